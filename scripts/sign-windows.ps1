<#
.SYNOPSIS
Signs Windows programs in place with signtool and checks the signatures (the release workflow's
optional signing; `make dist` calls it through FLOWORK_SIGN_WINDOWS).

.DESCRIPTION
  $env:FLOWORK_SIGN_WINDOWS = "pwsh -NoProfile -File scripts/sign-windows.ps1"
  make dist     # signs dist\flowork\flowork.exe and flowork-engine.exe, then the setup program

Environment: WINDOWS_CERTIFICATE_FILE (the .pfx), WINDOWS_CERTIFICATE_PASSWORD, and optionally
WINDOWS_TIMESTAMP_URL (an RFC 3161 time-stamping service; default DigiCert's). signtool.exe comes
from PATH or the newest Windows 10/11 SDK.
#>
param(
    [Parameter(Mandatory = $true, ValueFromRemainingArguments = $true)]
    [string[]] $Files
)
$ErrorActionPreference = 'Stop'

$certificate = $env:WINDOWS_CERTIFICATE_FILE
if (-not $certificate -or -not (Test-Path -LiteralPath $certificate)) {
    throw "sign-windows.ps1: WINDOWS_CERTIFICATE_FILE must name the .pfx file to sign with"
}
$timestamp = if ($env:WINDOWS_TIMESTAMP_URL) { $env:WINDOWS_TIMESTAMP_URL } else { 'http://timestamp.digicert.com' }

$signtool = (Get-Command signtool.exe -ErrorAction SilentlyContinue).Source
if (-not $signtool) {
    $signtool = Get-ChildItem -Path "${env:ProgramFiles(x86)}\Windows Kits\10\bin\*\x64\signtool.exe" -ErrorAction SilentlyContinue |
        Sort-Object { [version]$_.Directory.Parent.Name } -Descending |
        Select-Object -First 1 -ExpandProperty FullName
}
if (-not $signtool) { throw "sign-windows.ps1: signtool.exe not found: install the Windows SDK" }

& $signtool sign /fd SHA256 /td SHA256 /tr $timestamp /d Flowork /f $certificate /p "$env:WINDOWS_CERTIFICATE_PASSWORD" @Files
if ($LASTEXITCODE -ne 0) { throw "sign-windows.ps1: signtool sign failed (exit code $LASTEXITCODE)" }
& $signtool verify /pa /all @Files
if ($LASTEXITCODE -ne 0) { throw "sign-windows.ps1: signtool verify failed (exit code $LASTEXITCODE)" }

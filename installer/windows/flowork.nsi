; Flowork Desktop installer for Windows (NSIS 3, Unicode): a per-user install without admin
; rights, from the PyInstaller folder that build.spec makes (dist\flowork).
;
;   makensis -DVERSION=0.1.0 -DVERSION_QUAD=0.1.0.0 installer\windows\flowork.nsi
;   (make dist passes them; makensis takes - switches everywhere, / ones only on Windows)
;
; Defines: VERSION (required), VERSION_QUAD (a.b.c.d for the file's version resource; default
; VERSION.0), PAYLOAD (default ..\..\dist\flowork, relative to this file), OUTFILE (default
; ..\..\dist\Flowork-Setup-VERSION.exe).
;
; What it does: copies the bundle to %LOCALAPPDATA%\Programs\Flowork, adds a Start menu entry
; (and, if chosen, a desktop shortcut and start at login), registers an uninstaller under
; HKCU so that Settings > Apps lists it, and offers to start Flowork at the end.
; The uninstaller removes the program files, the shortcuts, the start-at-login value (the
; same value the app's own "Start at login" writes: HKCU\...\Run "Flowork") and the
; notification registration, and asks before deleting the user's data.

Unicode True
ManifestDPIAware True
SetCompressor /SOLID lzma
RequestExecutionLevel user       ; never ask for elevation: everything goes to the user's profile

!define APP_NAME "Flowork"
!define PUBLISHER "Flowork"
!define APP_EXE "flowork.exe"
!define ENGINE_EXE "flowork-engine.exe"
!define UNINSTALL_EXE "Uninstall Flowork.exe"
!define UNINSTALL_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Flowork"
!define RUN_KEY "Software\Microsoft\Windows\CurrentVersion\Run"
!define RUN_VALUE "Flowork"       ; desktop/autostart.py RUN_VALUE: the app and installer share it
!define AUMID_KEY "Software\Classes\AppUserModelId\Flowork"  ; written by desktop-notifier
!define KEYRING_SERVICE "flowork-desktop"                     ; engine/store/secret_key.py

!ifndef VERSION
  !error "Pass the version: makensis -DVERSION=0.1.0 installer\windows\flowork.nsi (make dist does)"
!endif
!ifndef VERSION_QUAD
  !define VERSION_QUAD "${VERSION}.0"
!endif
!ifndef PAYLOAD
  !define PAYLOAD "..\..\dist\flowork"
!endif
!ifndef OUTFILE
  !define OUTFILE "..\..\dist\Flowork-Setup-${VERSION}.exe"
!endif
!define ICON "..\..\resources\icons\flowork.ico"

Name "${APP_NAME}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\${APP_NAME}"
InstallDirRegKey HKCU "${UNINSTALL_KEY}" "InstallLocation"   ; an update goes where the last install went
BrandingText "${APP_NAME} ${VERSION}"

VIProductVersion "${VERSION_QUAD}"
VIFileVersion "${VERSION_QUAD}"
VIAddVersionKey "ProductName" "${APP_NAME}"
VIAddVersionKey "ProductVersion" "${VERSION}"
VIAddVersionKey "FileVersion" "${VERSION}"
VIAddVersionKey "FileDescription" "${APP_NAME} ${VERSION} Setup"
VIAddVersionKey "CompanyName" "${PUBLISHER}"
VIAddVersionKey "LegalCopyright" "Copyright (c) ${PUBLISHER}. MIT License."

!include "MUI2.nsh"
!include "LogicLib.nsh"
!include "FileFunc.nsh"
!include "x64.nsh"

!define MUI_ICON "${ICON}"
!define MUI_UNICON "${ICON}"
!define MUI_ABORTWARNING
!define MUI_COMPONENTSPAGE_NODESC
!define MUI_FINISHPAGE_RUN "$INSTDIR\${APP_EXE}"
!define MUI_FINISHPAGE_RUN_TEXT "Start ${APP_NAME} now"

!insertmacro MUI_PAGE_WELCOME
!insertmacro MUI_PAGE_COMPONENTS
!insertmacro MUI_PAGE_DIRECTORY
!insertmacro MUI_PAGE_INSTFILES
!insertmacro MUI_PAGE_FINISH

!insertmacro MUI_UNPAGE_CONFIRM
!insertmacro MUI_UNPAGE_INSTFILES

!insertmacro MUI_LANGUAGE "English"

; -- Flowork must not be running while its files are replaced or removed ----------------------

!macro ENSURE_NOT_RUNNING UN
Function ${UN}EnsureNotRunning
  ReadEnvStr $R1 "USERNAME"
  retry:
    ; tasklist prints the image name only when such a process of this user exists.
    nsExec::ExecToStack '"$SYSDIR\cmd.exe" /C ""$SYSDIR\tasklist.exe" /NH /FI "USERNAME eq $R1" /FI "IMAGENAME eq ${APP_EXE}" & "$SYSDIR\tasklist.exe" /NH /FI "USERNAME eq $R1" /FI "IMAGENAME eq ${ENGINE_EXE}""'
    Pop $R2  ; exit code
    Pop $R3  ; output
    ${If} $R2 == 0
      StrCpy $R4 0
      loop:  ; look for ".exe" in the output (no match: the "No tasks are running" message)
        StrCpy $R5 $R3 4 $R4
        ${If} $R5 == ".exe"
          MessageBox MB_RETRYCANCEL|MB_ICONEXCLAMATION \
            "${APP_NAME} is running. Quit it from its tray menu (Quit), stop any flowork-engine, then click Retry." \
            /SD IDCANCEL IDRETRY retry
          Abort "${APP_NAME} is still running."
        ${EndIf}
        ${If} $R5 != ""
          IntOp $R4 $R4 + 1
          Goto loop
        ${EndIf}
    ${EndIf}
FunctionEnd
!macroend
!insertmacro ENSURE_NOT_RUNNING ""
!insertmacro ENSURE_NOT_RUNNING "un."

; -- install ------------------------------------------------------------------------------------

Function .onInit
  SetShellVarContext current   ; shortcuts in this user's Start menu and desktop
  ${IfNot} ${RunningX64}       ; the bundle is 64-bit Python and Qt
    MessageBox MB_ICONSTOP "${APP_NAME} needs a 64-bit version of Windows." /SD IDOK
    Abort
  ${EndIf}
FunctionEnd

Section "${APP_NAME}" SecApp
  SectionIn RO
  Call EnsureNotRunning
  SetOutPath "$INSTDIR"
  ; An update replaces the whole bundle, so no file of an older version is left behind. Only
  ; our own folder goes, and only where our program was installed before.
  ${If} ${FileExists} "$INSTDIR\${APP_EXE}"
    RMDir /r "$INSTDIR\_internal"
  ${EndIf}
  File /r "${PAYLOAD}\*.*"
  WriteUninstaller "$INSTDIR\${UNINSTALL_EXE}"

  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayName" "${APP_NAME}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "Publisher" "${PUBLISHER}"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "DisplayIcon" '"$INSTDIR\${APP_EXE}",0'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKCU "${UNINSTALL_KEY}" "UninstallString" '"$INSTDIR\${UNINSTALL_EXE}"'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "QuietUninstallString" '"$INSTDIR\${UNINSTALL_EXE}" /S'
  WriteRegStr HKCU "${UNINSTALL_KEY}" "URLInfoAbout" "https://flowork.cloud"
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "NoRepair" 1
  ${GetSize} "$INSTDIR" "/S=0K" $0 $1 $2
  IntFmt $0 "0x%08X" $0
  WriteRegDWORD HKCU "${UNINSTALL_KEY}" "EstimatedSize" "$0"
SectionEnd

Section "Start menu entry" SecStartMenu
  CreateShortcut "$SMPROGRAMS\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
SectionEnd

Section /o "Desktop shortcut" SecDesktop
  CreateShortcut "$DESKTOP\${APP_NAME}.lnk" "$INSTDIR\${APP_EXE}" "" "$INSTDIR\${APP_EXE}" 0
SectionEnd

; Off unless chosen, like the app's own setting; the app's "Start at login" checkbox reads and
; changes this same value later.
Section /o "Start ${APP_NAME} when I sign in" SecAutostart
  WriteRegStr HKCU "${RUN_KEY}" "${RUN_VALUE}" '"$INSTDIR\${APP_EXE}" --autostart'
SectionEnd

; -- uninstall ----------------------------------------------------------------------------------

Function un.onInit
  SetShellVarContext current
FunctionEnd

Section "Uninstall"
  Call un.EnsureNotRunning
  DeleteRegValue HKCU "${RUN_KEY}" "${RUN_VALUE}"
  DeleteRegKey HKCU "${AUMID_KEY}"
  Delete "$SMPROGRAMS\${APP_NAME}.lnk"
  Delete "$DESKTOP\${APP_NAME}.lnk"

  ; Only what the installer put there: a folder the user chose may hold other files.
  RMDir /r "$INSTDIR\_internal"
  Delete "$INSTDIR\${APP_EXE}"
  Delete "$INSTDIR\${ENGINE_EXE}"
  Delete "$INSTDIR\${UNINSTALL_EXE}"
  RMDir "$INSTDIR"
  DeleteRegKey HKCU "${UNINSTALL_KEY}"

  ; User data: kept unless the user says otherwise (a silent uninstall keeps it).
  MessageBox MB_YESNO|MB_ICONQUESTION|MB_DEFBUTTON2 \
    "Also delete your ${APP_NAME} data?$\r$\n$\r$\nThis deletes your presets, settings, secret variables, run history and logs in $LOCALAPPDATA\flowork, and the keys ${APP_NAME} keeps in Windows Credential Manager. They cannot be restored.$\r$\n$\r$\nChoose No to keep them for a later installation." \
    /SD IDNO IDNO keep_data
    RMDir /r "$LOCALAPPDATA\flowork"
    ; The keyring entries (engine ID, tunnel token, the key of the secret variables) are
    ; generic credentials whose target names end in the keyring service name.
    nsExec::Exec `"$SYSDIR\WindowsPowerShell\v1.0\powershell.exe" -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "cmdkey /list | Select-String -Pattern 'Target:\s*(\S*${KEYRING_SERVICE})\s*$$' | ForEach-Object { cmdkey /delete:$$($$_.Matches[0].Groups[1].Value) | Out-Null }"`
    Pop $0
  keep_data:
SectionEnd

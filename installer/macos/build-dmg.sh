#!/usr/bin/env bash
# Build dist/Flowork-<version>-macos-<arch>.dmg from dist/Flowork.app (made by build.spec on a
# Mac; `make dist` runs both steps). The disk image holds the app and a link to /Applications,
# so installing is a drag from one to the other.
#
# Unsigned (for testing):   installer/macos/build-dmg.sh
# Release (signed and notarized), once per machine:
#   1. Install a "Developer ID Application" certificate in the login keychain
#      (security find-identity -v -p codesigning lists it).
#   2. Store notary credentials in the keychain under a profile name:
#      xcrun notarytool store-credentials flowork-notary --apple-id YOU@EXAMPLE.COM \
#          --team-id TEAMID --password APP-SPECIFIC-PASSWORD
# then for each release:
#   export FLOWORK_CODESIGN_IDENTITY="Developer ID Application: NAME (TEAMID)"
#   export FLOWORK_NOTARY_PROFILE=flowork-notary
#   make dist      # build.spec signs every binary and the .app (hardened runtime, timestamp,
#                  # installer/macos/entitlements.plist); this script then notarizes and
#                  # staples the app, builds the .dmg, signs, notarizes and staples it.
#
# Environment: APP (default dist/Flowork.app), OUT (default dist), FLOWORK_CODESIGN_IDENTITY,
# FLOWORK_NOTARY_PROFILE (both or neither for a release).
set -euo pipefail
cd "$(dirname "$0")/../.."
APP=${APP:-dist/Flowork.app}
OUT=${OUT:-dist}
IDENTITY=${FLOWORK_CODESIGN_IDENTITY:-}
PROFILE=${FLOWORK_NOTARY_PROFILE:-}

die() { echo "build-dmg.sh: $*" >&2; exit 1; }
[ "$(uname -s)" = Darwin ] || die "hdiutil, codesign and notarytool exist only on macOS"
[ -d "$APP/Contents/MacOS" ] || die "$APP is missing: build it first (make dist, or pyinstaller build.spec)"
if [ -n "$PROFILE" ] && [ -z "$IDENTITY" ]; then
    die "FLOWORK_NOTARY_PROFILE is set but FLOWORK_CODESIGN_IDENTITY is not: Apple notarizes only signed apps"
fi

VERSION=$(/usr/libexec/PlistBuddy -c "Print :CFBundleShortVersionString" "$APP/Contents/Info.plist")
# The architectures the app was built for (the Python it was built with decides), not the shell's.
case "$(lipo -archs "$APP/Contents/MacOS/flowork")" in
    *x86_64*arm64*|*arm64*x86_64*) ARCH=universal2 ;;
    *) ARCH=$(lipo -archs "$APP/Contents/MacOS/flowork") ;;
esac
NAME="Flowork-$VERSION-macos-$ARCH"
DMG="$OUT/$NAME.dmg"

PYTHON=${PYTHON:-.venv/bin/python}
[ -x "$PYTHON" ] || PYTHON=python3
json_field() {  # key: one field of the JSON object on stdin ("" when it is not JSON)
    "$PYTHON" -c 'import json, sys
try:
    print(json.load(sys.stdin).get(sys.argv[1], ""))
except ValueError:
    print("")' "$1"
}

notarize() {  # file: submit to Apple's notary service, wait for the verdict, show the log on failure
    local file=$1 out id
    echo "Notarizing $file (this takes a few minutes)..."
    # notarytool exits non-zero for a rejected submission too; read its verdict either way.
    out=$(xcrun notarytool submit "$file" --keychain-profile "$PROFILE" --wait --output-format json) || true
    id=$(printf '%s' "$out" | json_field id)
    [ -n "$id" ] || die "notarytool could not submit $file: $out"
    if [ "$(printf '%s' "$out" | json_field status)" != "Accepted" ]; then
        xcrun notarytool log "$id" --keychain-profile "$PROFILE" >&2 || true
        die "Apple did not accept $file (submission $id); the log above says why"
    fi
}

if [ -n "$IDENTITY" ]; then
    # build.spec signed the app; make sure the signature is whole and meets Gatekeeper's rules.
    codesign --verify --deep --strict --verbose=2 "$APP"
    details=$(codesign --display --verbose=2 "$APP" 2>&1)
    case "$details" in
        *flags=*runtime*) ;;
        *) die "$APP is not signed with the hardened runtime: build with FLOWORK_CODESIGN_IDENTITY set" ;;
    esac
    if [ -n "$PROFILE" ]; then
        # Notarize and staple the app itself too, so that a copy in /Applications opens
        # without asking Apple's servers (offline first launch).
        mkdir -p build/dmg
        ditto -c -k --keepParent "$APP" "build/dmg/$NAME-app.zip"
        notarize "build/dmg/$NAME-app.zip"
        xcrun stapler staple "$APP"
    fi
fi

STAGING="build/dmg/$NAME"
rm -rf "$STAGING"
mkdir -p "$STAGING" "$OUT"
ditto "$APP" "$STAGING/Flowork.app"            # ditto keeps signatures, links and attributes
ln -s /Applications "$STAGING/Applications"
rm -f "$DMG"
hdiutil create -volname "Flowork $VERSION" -srcfolder "$STAGING" -fs HFS+ \
    -format UDZO -imagekey zlib-level=9 -ov "$DMG"
hdiutil verify "$DMG"

if [ -n "$IDENTITY" ]; then
    codesign --force --sign "$IDENTITY" --timestamp "$DMG"
    codesign --verify --verbose=2 "$DMG"
    if [ -n "$PROFILE" ]; then
        notarize "$DMG"
        xcrun stapler staple "$DMG"
        xcrun stapler validate "$DMG"
        spctl --assess --type open --context context:primary-signature --verbose=2 "$DMG"
        spctl --assess --type execute --verbose=2 "$APP"
    fi
fi
if [ -n "$PROFILE" ]; then state="signed and notarized"
elif [ -n "$IDENTITY" ]; then state="signed, not notarized"
else state="unsigned: Gatekeeper will refuse it on other Macs"; fi
echo "Built $DMG ($(du -h "$DMG" | cut -f1), $state)"

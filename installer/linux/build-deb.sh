#!/usr/bin/env bash
# Build the Debian package and the .tar.gz from the PyInstaller folder (dist/flowork, made by
# build.spec; `make dist` runs both steps).
#
#   installer/linux/build-deb.sh            -> dist/flowork_<version>_<arch>.deb
#                                              dist/flowork-<version>-linux-<arch>.tar.gz
#
# Package layout: the bundle in /opt/flowork (self-contained, as PyInstaller made it), the links
# /usr/bin/flowork and /usr/bin/flowork-engine, the menu entry /usr/share/applications/
# flowork.desktop (its name is the app's desktop file name, so docks match the window to it),
# icons in the hicolor theme, man pages made from --help, copyright and changelog.
# Depends: what the bundle links but does not carry, as dpkg-shlibdeps computes it from the
# built files (private libraries found in the bundle count as provided), plus the data files the
# bundled libraries read from the system (see RUNTIME_DATA below). No maintainer scripts: the
# icon cache and the menu are refreshed by the hicolor-icon-theme and desktop-file-utils
# triggers, and removing the package removes every file it installed. User data in home
# folders is left alone, as Debian policy wants (see installer/linux/README.md).
# Environment: BUNDLE (default dist/flowork), OUT (default dist), WORK (staging, default
# build/deb), DEB_MAINTAINER, DEB_COMPRESSION.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUNDLE=${BUNDLE:-dist/flowork}
OUT=${OUT:-dist}
MAINTAINER=${DEB_MAINTAINER:-Flowork Desktop maintainers <desktop@flowork.cloud>}
COMPRESSION=${DEB_COMPRESSION:-xz}  # xz: 48 MB in ~2.5 min on 2 cores; gzip: 69 MB in 30 s
PACKAGE=flowork
HERE=installer/linux

die() { echo "build-deb.sh: $*" >&2; exit 1; }
[ -x "$BUNDLE/flowork" ] && [ -x "$BUNDLE/flowork-engine" ] \
    || die "$BUNDLE has no flowork/flowork-engine executables: build it first (make dist, or pyinstaller build.spec)"
for tool in dpkg-deb dpkg-shlibdeps objdump chrpath python3; do
    command -v "$tool" >/dev/null || die "$tool is missing (bash scripts/install-system-deps.sh installs it)"
done

PY_VERSION=$(python3 -c 'import sys; sys.path.insert(0, "installer/pyinstaller"); import bundle_config; print(bundle_config.project_version())')
# PEP 440 pre-releases sort before the release in Debian only with a tilde: 1.0rc1 -> 1.0~rc1.
VERSION=$(printf '%s' "$PY_VERSION" | sed -E 's/[.-]?(a|b|rc|dev)([0-9]*)$/~\1\2/')
ARCH=$(dpkg --print-architecture)
BUNDLE_VERSION=$("$BUNDLE/flowork-engine" --version | awk '{print $2}')
[ "$BUNDLE_VERSION" = "$PY_VERSION" ] || die "$BUNDLE is version $BUNDLE_VERSION but pyproject.toml says $PY_VERSION: rebuild it"
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}

WORK=$(realpath -m "${WORK:-build/deb}")
STAGE=$WORK/${PACKAGE}_${VERSION}_${ARCH}
rm -rf "$STAGE" "$WORK/shlibdeps"
mkdir -p "$STAGE/DEBIAN" "$STAGE/opt" "$STAGE/usr/bin" "$STAGE/usr/share/applications" \
         "$STAGE/usr/share/doc/$PACKAGE" "$STAGE/usr/share/man/man1" "$STAGE/usr/share/lintian/overrides" "$OUT"

# -- payload -----------------------------------------------------------------------------------
cp -a "$BUNDLE" "$STAGE/opt/$PACKAGE"
find "$STAGE/opt/$PACKAGE" -name __pycache__ -prune -exec rm -rf {} +
# A Python built outside Debian (pyenv, python.org) leaves its build folder in the RUNPATH of
# libpython and its extension modules. On a user's machine that folder could belong to someone
# else, who could then plant libraries there: keep only the $ORIGIN-relative entries.
while IFS= read -r -d '' f; do
    head -c 4 "$f" | grep -q ELF || continue
    rpath=$(objdump -p "$f" | awk '$1 == "RUNPATH" || $1 == "RPATH" {print $2}')
    [ -n "$rpath" ] || continue
    kept=$(printf '%s' "$rpath" | tr ':' '\n' | grep '^\$ORIGIN' | paste -sd: || true)
    [ "$kept" = "$rpath" ] && continue
    if [ -n "$kept" ]; then chrpath -r "$kept" "$f" >/dev/null; else chrpath -d "$f" >/dev/null; fi
done < <(find "$STAGE/opt/$PACKAGE" -type f -name '*.so*' -print0)
# Links across top-level folders are absolute (Debian policy 10.5).
ln -s "/opt/$PACKAGE/flowork" "$STAGE/usr/bin/flowork"
ln -s "/opt/$PACKAGE/flowork-engine" "$STAGE/usr/bin/flowork-engine"
install -m 0644 "$HERE/flowork.desktop" "$STAGE/usr/share/applications/flowork.desktop"
for size in 16 22 24 32 48 64 128 256 512; do
    install -D -m 0644 "resources/icons/flowork-$size.png" "$STAGE/usr/share/icons/hicolor/${size}x${size}/apps/flowork.png"
done
install -D -m 0644 resources/flowork.svg "$STAGE/usr/share/icons/hicolor/scalable/apps/flowork.svg"
install -m 0644 "$HERE/copyright" "$STAGE/usr/share/doc/$PACKAGE/copyright"
install -m 0644 "$HERE/lintian-overrides" "$STAGE/usr/share/lintian/overrides/$PACKAGE"
# changelog.gz: a native package's changelog, one entry for this build.
{
    echo "$PACKAGE ($VERSION) unstable; urgency=medium"
    echo
    echo "  * Flowork Desktop $PY_VERSION, built from build.spec with PyInstaller."
    echo
    echo " -- $MAINTAINER  $(date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n > "$STAGE/usr/share/doc/$PACKAGE/changelog.gz"
# Man pages from the programs' own --help, so that they never drift from the options.
man_page() {  # name, one-line summary
    local name=$1 summary=$2 help
    help=$("$BUNDLE/$name" --help)
    {
        echo ".TH $(echo "$name" | tr '[:lower:]' '[:upper:]') 1 \"$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)\" \"Flowork $PY_VERSION\" \"User Commands\""
        echo ".SH NAME"
        echo "$name \\- $summary"
        echo ".SH DESCRIPTION"
        echo ".nf"
        printf '%s\n' "$help" | sed -e 's/\\/\\\\/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
        echo ".fi"
        echo ".SH SEE ALSO"
        echo "/usr/share/doc/$PACKAGE/copyright"
    } | gzip -9n > "$STAGE/usr/share/man/man1/$name.1.gz"
}
man_page flowork "the Flowork Core Engine in the system tray"
man_page flowork-engine "the Flowork Core Engine without a user interface"

# -- Depends -----------------------------------------------------------------------------------
# dpkg-shlibdeps works inside a source tree; give it a minimal one. The bundle's own folders are
# private library paths, so what the bundle carries is not a dependency. Qt's GTK theme plugin
# goes to Recommends: it gives GNOME users the native file dialogs and is skipped without GTK.
mkdir -p "$WORK/shlibdeps/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PACKAGE" "$PACKAGE" > "$WORK/shlibdeps/debian/control"
mapfile -t elfs < <(find "$STAGE/opt/$PACKAGE" -type f -exec sh -c 'head -c 4 "$1" | grep -q "ELF" && echo "$1"' _ {} \; | sort)
core=() optional=()
for f in "${elfs[@]}"; do
    case "$f" in
        */platformthemes/libqgtk3.so) optional+=("$f") ;;
        *) core+=("$f") ;;
    esac
done
private=()
while IFS= read -r dir; do private+=("-l$dir"); done < <(
    for f in "${elfs[@]}"; do dirname "$f"; done | sort -u)
# dpkg-shlibdeps also charges a bundled library to the Debian package that has a copy of it.
# Leave out the packages all of whose libraries the bundle carries: the package of every
# library the bundle links but lacks stays.
declare -A OWNER=()  # soname -> the Debian package whose copy the dynamic linker would load
find_owners() {  # sonames...: fill OWNER with one dpkg -S call (merged /usr: try both spellings)
    local soname path candidates=() line
    declare -gA CANDIDATES=()
    declare -A cache=()
    while read -r soname _ _ _ path; do  # "libz.so.1 (libc6,x86-64) => /lib/.../libz.so.1"
        [ -n "${cache[$soname]:-}" ] || cache[$soname]=$path
    done < <(ldconfig -p | tail -n +2 | sed 's/ (\([^)]*\)) => / \1 x => /')
    for soname in "$@"; do
        path=${cache[$soname]:-}
        [ -n "$path" ] || continue
        CANDIDATES[$soname]="$path $(realpath "$path")"
        CANDIDATES[$soname]+=" $(for p in ${CANDIDATES[$soname]}; do case $p in /usr/*) echo "${p#/usr}" ;; *) echo "/usr$p" ;; esac; done)"
        candidates+=(${CANDIDATES[$soname]})
    done
    declare -A by_path=()
    while IFS= read -r line; do
        case $line in diversion*) continue ;; esac
        by_path[${line#*: }]=${line%%:*}
    done < <(dpkg -S "${candidates[@]}" 2>/dev/null)
    for soname in "${!CANDIDATES[@]}"; do
        for path in ${CANDIDATES[$soname]}; do
            if [ -n "${by_path[$path]:-}" ]; then OWNER[$soname]=${by_path[$path]}; break; fi
        done
    done
}
mapfile -t bundled < <(find "$STAGE/opt/$PACKAGE" \( -type f -o -type l \) -name '*.so*' -printf '%f\n' | sort -u)
mapfile -t needed < <(for f in "${core[@]}"; do objdump -p "$f" | awk '$1 == "NEEDED" {print $2}'; done | sort -u)
mapfile -t external < <(comm -13 <(printf '%s\n' "${bundled[@]}") <(printf '%s\n' "${needed[@]}"))
find_owners "${external[@]}" "${bundled[@]}"
mapfile -t keep < <(for s in "${external[@]}"; do echo "${OWNER[$s]:-}"; done | sort -u)
mapfile -t carried < <(for s in "${bundled[@]}"; do echo "${OWNER[$s]:-}"; done | sort -u)
exclude=()
for pkg in $(comm -23 <(printf '%s\n' "${carried[@]}") <(printf '%s\n' "${keep[@]}")); do exclude+=("-x$pkg"); done
substvars=$(cd "$WORK/shlibdeps" && dpkg-shlibdeps -O --ignore-missing-info "${private[@]}" "${exclude[@]}" \
    -e "${core[@]}" 2> "$WORK/shlibdeps.log") \
    || { cat "$WORK/shlibdeps.log" >&2; die "dpkg-shlibdeps failed"; }
SHLIBS_DEPENDS=$(printf '%s\n' "$substvars" | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS_DEPENDS" ] || die "dpkg-shlibdeps found no dependencies (see $WORK/shlibdeps.log)"
# Data the bundled libraries read from the system: fontconfig's configuration (and through it
# a font), the X keyboard descriptions (libxkbcommon) and X11's locale tables (libX11).
RUNTIME_DATA="fontconfig-config, xkb-data, libx11-data"
RECOMMENDS="libgtk-3-0"
[ ${#optional[@]} -gt 0 ] || RECOMMENDS=""

INSTALLED_SIZE=$(du -sk --apparent-size --exclude=DEBIAN "$STAGE" | cut -f1)
{
    echo "Package: $PACKAGE"
    echo "Version: $VERSION"
    echo "Architecture: $ARCH"
    echo "Maintainer: $MAINTAINER"
    echo "Installed-Size: $INSTALLED_SIZE"
    echo "Depends: $SHLIBS_DEPENDS, $RUNTIME_DATA"
    [ -z "$RECOMMENDS" ] || echo "Recommends: $RECOMMENDS"
    echo "Section: utils"
    echo "Priority: optional"
    echo "Homepage: https://flowork.cloud"
    echo "Description: tray app running the Flowork Core Engine for the web GUI"
    echo " Flowork Desktop runs the Flowork Core Engine, the local workflow engine"
    echo " that the Flowork web GUI drives over a WebSocket, from a tray icon:"
    echo " start and stop it, answer approval requests, choose the folders the web"
    echo " GUI may browse, and open the GUI. flowork-engine runs the same engine"
    echo " without a display, for servers."
    echo " ."
    echo " This package carries its own Python and Qt in /opt/flowork."
} > "$STAGE/DEBIAN/control"
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$STAGE/DEBIAN/md5sums"

# Permissions as lintian expects: folders 0755, files (shared libraries too) 0644, programs 0755.
find "$STAGE" -type d -exec chmod 0755 {} +
find "$STAGE" -type f -exec chmod 0644 {} +
chmod 0755 "$STAGE/opt/$PACKAGE/flowork" "$STAGE/opt/$PACKAGE/flowork-engine"
chmod 0644 "$STAGE/DEBIAN/control" "$STAGE/DEBIAN/md5sums"
find "$STAGE" -newermt "@$SOURCE_DATE_EPOCH" -print0 | xargs -0r touch -h -d "@$SOURCE_DATE_EPOCH"

DEB="$OUT/${PACKAGE}_${VERSION}_${ARCH}.deb"
dpkg-deb --root-owner-group "-Z$COMPRESSION" --build "$STAGE" "$DEB" >/dev/null
echo "Built $DEB ($(du -h "$DEB" | cut -f1))"
echo "  Depends: $SHLIBS_DEPENDS, $RUNTIME_DATA"
[ -z "$RECOMMENDS" ] || echo "  Recommends: $RECOMMENDS"

# -- .tar.gz for other distributions ------------------------------------------------------------
case "$ARCH" in amd64) TARCH=x86_64 ;; arm64) TARCH=aarch64 ;; *) TARCH=$ARCH ;; esac
TARBALL="$OUT/$PACKAGE-$PY_VERSION-linux-$TARCH.tar.gz"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    --exclude=__pycache__ -C "$STAGE/opt" --transform "s,^$PACKAGE,$PACKAGE-$PY_VERSION," \
    -cf - "$PACKAGE" | gzip -9n > "$TARBALL"
echo "Built $TARBALL ($(du -h "$TARBALL" | cut -f1))"

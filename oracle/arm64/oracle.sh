#!/bin/bash
# The arm64 KVM oracle: boots Linux (7.3 and 6.12) under qemu-system-aarch64 with EL2, runs the S2Lab probe on its
# /dev/kvm and records the kernel's answers as transcripts under tests/S2Lab.Lab.Tests/Arm64Oracle/.
# See oracle/arm64/README.md. Needs root (apt-get) on a Debian 12 x86_64 host; no KVM on the host.
#
#   oracle/arm64/oracle.sh                   everything: both kernels, every CPU model
#   oracle/arm64/oracle.sh --kernels 7.3 --cpus "max cortex-a57"
#
# Environment: S2LAB_ORACLE_CACHE (default /var/cache/s2lab-oracle) holds sources, kernel builds and boot logs, so
# a second run reuses the kernels; JOBS (default 2) is make's -j; SEED (1) and COUNT (2500) drive the generator.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${S2LAB_ORACLE_CACHE:-/var/cache/s2lab-oracle}
jobs=${JOBS:-2}
seed=${SEED:-1}
count=${COUNT:-2500}
kernels="7.3 6.12"
cpus="max cortex-a57 cortex-a72 neoverse-n1 max+mte"
out="$repo/tests/S2Lab.Lab.Tests/Arm64Oracle"

while [ $# -gt 0 ]; do
	case "$1" in
	--kernels) kernels=$2; shift 2 ;;
	--cpus) cpus=$2; shift 2 ;;
	--out) out=$2; shift 2 ;;
	*) echo "usage: $0 [--kernels \"7.3 6.12\"] [--cpus \"max cortex-a57 ...\"] [--out DIR]" >&2; exit 2 ;;
	esac
done

log() { printf '[oracle %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }
mkdir -p "$cache/src" "$out"

# ---- 1. packages ----
pkgs="qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross bc flex bison libssl-dev libelf-dev cpio xz-utils gcc make"
case " $kernels " in *" 6.12 "*) pkgs="$pkgs linux-source-6.12" ;; esac
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
	log "installing: $missing"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq $missing >/dev/null
fi

# ---- 2. kernel sources ----
# The main Debian archive URI of the system's own apt sources (deb822 .sources files or one-line sources.list).
debian_mirror() {
	{
		awk '/^URIs:/ { u = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i !~ /-/) { print u; exit } }' \
			/etc/apt/sources.list.d/*.sources 2>/dev/null || true
		awk '$1 == "deb" && $0 !~ /-(security|updates|backports)/ { for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) { print $i; exit } }' \
			/etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true
	} | head -n1
}

# linux-source-7.3 is in trixie-backports: fetch the one .deb through a private apt state, leaving the system's
# sources alone.
fetch_backports_source() { # VERSION
	local v=$1 apt="$cache/apt" mirror
	local -a opts
	[ -f "$cache/src/linux-source-$v.tar.xz" ] && return
	mirror=$(debian_mirror)
	[ -n "$mirror" ] || { echo "oracle: no Debian archive found in the system's apt sources" >&2; exit 1; }
	mkdir -p "$apt/lists/partial" "$apt/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror trixie-backports main" > "$apt/sources.list"
	opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/nonexistent
		-o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt" -o "Dir::Cache::Archives=$apt/archives")
	log "fetching linux-source-$v (private apt state in $apt)"
	apt-get "${opts[@]}" update -qq
	(cd "$cache/src" && apt-get "${opts[@]}" download "linux-source-$v" >/dev/null 2>&1)
	dpkg-deb --fsys-tarfile "$cache"/src/linux-source-"$v"_*.deb | tar -xO "./usr/src/linux-source-$v.tar.xz" > "$cache/src/linux-source-$v.tar.xz"
}

source_tree() { # VERSION -> prints the source directory
	local v=$1 tarball
	if [ ! -d "$cache/src/linux-source-$v" ]; then
		if [ -f "/usr/src/linux-source-$v.tar.xz" ]; then tarball=/usr/src/linux-source-$v.tar.xz
		else fetch_backports_source "$v"; tarball=$cache/src/linux-source-$v.tar.xz; fi
		log "extracting $tarball"
		tar -xJf "$tarball" -C "$cache/src"
	fi
	echo "$cache/src/linux-source-$v"
}

# ---- 3. kernel ----
build_kernel() { # VERSION
	local v=$1 src build stamp
	src=$(source_tree "$v")
	build=$cache/build-$v
	stamp=$(sha256sum "$here/kconfig.fragment" | cut -c1-16)
	if [ -f "$build/arch/arm64/boot/Image" ] && [ "$(cat "$build/.s2lab-fragment" 2>/dev/null)" = "$stamp" ]; then
		log "Linux $v: reusing $build"
		return
	fi
	mkdir -p "$build"
	KCONFIG_ALLCONFIG="$here/kconfig.fragment" make -s -C "$src" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- O="$build" allnoconfig
	log "Linux $v: building Image (make -j$jobs, log $build.log)"
	local t0=$SECONDS
	nice -n 19 make -C "$src" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- O="$build" -j"$jobs" Image modules_prepare > "$build.log" 2>&1 ||
		{ tail -20 "$build.log" >&2; exit 1; }
	log "Linux $v: built in $((SECONDS - t0)) s"
	echo "$stamp" > "$build/.s2lab-fragment"
}

# ---- 4. module, probe, initramfs ----
build_guest() { # VERSION -> $cache/work-VERSION/{s2oracle_pfnmap.ko,s2probe,gen_init_cpio}
	local v=$1 work=$cache/work-$1 src
	src=$(source_tree "$v")
	mkdir -p "$work/module"
	cp "$here/module/s2oracle_pfnmap.c" "$here/module/Kbuild" "$work/module/"
	make -s -C "$cache/build-$v" ARCH=arm64 CROSS_COMPILE=aarch64-linux-gnu- M="$work/module" KBUILD_MODPOST_WARN=1 modules >"$work/module.log" 2>&1 ||
		{ cat "$work/module.log" >&2; exit 1; }
	cp "$work/module/s2oracle_pfnmap.ko" "$work/"
	aarch64-linux-gnu-gcc -static -O2 -Wall -o "$work/s2probe" "$here/probe/s2probe.c"
	gcc -O2 -o "$work/gen_init_cpio" "$src/usr/gen_init_cpio.c"
}

# ---- 5. boots ----
qemu_cpu() { case "$1" in max|max+mte) echo "max,lpa2=off,pauth=off" ;; *) echo "$1" ;; esac; }
qemu_machine() { case "$1" in *+mte) echo "virt,virtualization=on,gic-version=3,mte=on" ;; *) echo "virt,virtualization=on,gic-version=3" ;; esac; }
cpu_label() { case "$1" in *+mte) echo "$(qemu_cpu "$1") (virt,mte=on)" ;; *) qemu_cpu "$1" ;; esac; }

s2lab=$repo/src/S2Lab.Cli/bin/Release/net10.0/s2lab
log "building the s2lab CLI"
dotnet build "$repo/src/S2Lab.Cli" -c Release -v quiet -nologo >/dev/null
ops=$cache/ops-seed$seed.jsonl
"$s2lab" oracle ops --seed "$seed" --count "$count" > "$ops"
qemu_version=$(qemu-system-aarch64 --version | sed -n 's/^QEMU emulator version \([0-9.]*\).*/\1/p')

for v in $kernels; do
	build_kernel "$v"
	build_guest "$v"
	work=$cache/work-$v
	cat > "$work/initramfs.list" <<-EOF
		dir /dev 0755 0 0
		nod /dev/console 0600 0 0 c 5 1
		dir /proc 0755 0 0
		dir /sys 0755 0 0
		file /init $work/s2probe 0755 0 0
		file /s2oracle_pfnmap.ko $work/s2oracle_pfnmap.ko 0644 0 0
		file /ops.jsonl $ops 0644 0 0
	EOF
	"$work/gen_init_cpio" "$work/initramfs.list" > "$work/initramfs.cpio"
	for cpu in $cpus; do
		console=$work/console-$cpu.log
		log "Linux $v, -cpu $(cpu_label "$cpu"): booting"
		t0=$SECONDS
		timeout "${BOOT_TIMEOUT:-3600}" qemu-system-aarch64 -M "$(qemu_machine "$cpu")" -cpu "$(qemu_cpu "$cpu")" -smp 1 -m 1G \
			-nographic -no-reboot -kernel "$cache/build-$v/arch/arm64/boot/Image" -initrd "$work/initramfs.cpio" \
			-append "console=ttyAMA0 mem=768M loglevel=1" > "$console" 2>&1 || log "QEMU exited with $?"
		log "Linux $v, $cpu: $(grep -c '^@@S2A' "$console" || true) answers in $((SECONDS - t0)) s"
		"$s2lab" oracle record --ops "$ops" --console "$console" --qemu "$qemu_version" --cpu "$(cpu_label "$cpu")" \
			--seed "$seed" > "$out/linux-$v-${cpu/+/-}.jsonl.tmp" && mv "$out/linux-$v-${cpu/+/-}.jsonl.tmp" "$out/linux-$v-${cpu/+/-}.jsonl" ||
			{ log "Linux $v, $cpu: no transcript (see $console)"; rm -f "$out/linux-$v-${cpu/+/-}.jsonl.tmp"; }
	done
done

log "replaying the transcripts on the model"
"$s2lab" oracle check "$out"/*.jsonl

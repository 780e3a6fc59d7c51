#!/usr/bin/env bash
# scripts/setup.sh — installs what fastnat's tests and demo need on a Debian
# machine, only what is missing. .ci/run and scripts/demo call it; it is
# safe to run again.
#
#   sudo scripts/setup.sh
#
# What it installs, only when missing:
#   - Debian packages the end-to-end tests and the demo drive: vsftpd lftp
#     curl iproute2 nftables ethtool tcpdump procps; the router tests'
#     traceroute iputils-tracepath iputils-ping iperf3, and nmap with conntrack
#     (the scan test, and the kernel twin's sessions) and hping3 (source
#     routes); the collectors the
#     NAT event log is tested against: tshark, nfdump (nfcapd) and rsyslog;
#     groff-base (the man page test) and prometheus (its promtool tests the
#     alert rules and the metrics); the NAT behaviour discovery tools coturn
#     (turnserver, turnutils_natdiscovery), stun-server and stun-client; the
#     FTP interoperability matrix's python3-pyftpdlib server and its clients
#     wget tnftp ncftp busybox. A vsftpd, iperf3, nfcapd, rsyslogd,
#     prometheus, coturn or stund service installed here is stopped and
#     disabled again: the tests start their own, and use only promtool;
#   - the FTP servers proftpd (proftpd-core) and pure-ftpd, which Debian
#     will not install beside vsftpd (each conflicts with ftp-server): their
#     packages are downloaded with apt-get and unpacked, never configured or
#     started, under /opt/fastnat-test/PACKAGE, with the libraries they
#     need installed as packages (internal/testnet looks there);
#   - Go: Debian's golang-go with GOTOOLCHAIN=auto, so that the toolchain
#     go.mod asks for is fetched; if Debian's Go is too old to do that
#     (before 1.21, as in Debian 12), the official release named in go.mod
#     from dl.google.com, checked against its published SHA-256, into
#     /usr/local/go.
# Without root or apt-get it installs nothing and says so. Callers put
# /usr/local/go/bin on PATH and set GOTOOLCHAIN=auto themselves.
set -euo pipefail

cd "$(dirname "$0")/.."
log() { printf 'setup: %s\n' "$*"; }

packages=(vsftpd lftp curl ca-certificates iproute2 nftables ethtool tcpdump procps traceroute iputils-tracepath iputils-ping iperf3 nmap conntrack hping3 tshark nfdump rsyslog groff-base prometheus
	coturn stun-server stun-client python3 python3-pyftpdlib wget tnftp ncftp busybox)
# Services the packages above start, as PACKAGE:SERVICE; the tests run
# their own.
services=(vsftpd:vsftpd iperf3:iperf3 nfdump:nfdump rsyslog:rsyslog prometheus:prometheus coturn:coturn stun-server:stun)
# FTP servers that conflict with vsftpd: unpacked, not installed.
unpacked=(proftpd-core pure-ftpd)
unpacked_root=/opt/fastnat-test

install_packages() {
	local missing=() p
	for p in "${packages[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		log "Debian packages present"
		return
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# tshark asks whether non-root users may capture; the default (no) is fine.
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	local ps
	for ps in "${services[@]}"; do
		if [[ " ${missing[*]} " == *" ${ps%%:*} "* ]] && command -v systemctl >/dev/null; then
			systemctl disable --now "${ps#*:}" >/dev/null 2>&1 || true
		fi
	done
}

# unpack_packages downloads each package of $unpacked and unpacks it under
# $unpacked_root/PACKAGE, once, after installing the libraries its Depends
# names (the other dependencies are for running it as a service).
unpack_packages() {
	local p deb libs tmp
	for p in "${unpacked[@]}"; do
		[[ -d $unpacked_root/$p/usr ]] && continue
		log "unpacking $p under $unpacked_root/$p"
		tmp=$(mktemp -d)
		chmod 755 "$tmp" # apt's download user writes here
		(cd "$tmp" && apt-get download -qq "$p" >/dev/null 2>&1 || { apt-get update -qq && apt-get download -qq "$p" >/dev/null; })
		deb=$(ls "$tmp"/*.deb)
		mapfile -t libs < <(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -E 's/\|.*//; s/\(.*\)//; s/[[:space:]]//g' | grep '^lib')
		if ((${#libs[@]} > 0)); then
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${libs[@]}" >/dev/null
		fi
		mkdir -p "$unpacked_root/$p"
		dpkg-deb -x "$deb" "$unpacked_root/$p"
		rm -rf "$tmp"
	done
}

# go_minor prints the minor version of the go on PATH (1.21 -> 21), 0 if none.
go_minor() {
	local v
	v=$(go env GOVERSION 2>/dev/null || go version 2>/dev/null | awk '{print $3}') || true
	v=${v#go}
	[[ $v =~ ^1\.([0-9]+) ]] && echo "${BASH_REMATCH[1]}" || echo 0
}

install_go_release() {
	local ver arch url
	ver=$(awk '$1 == "go" {print $2; exit}' go.mod)
	case "$(uname -m)" in
	x86_64) arch=amd64 ;;
	aarch64) arch=arm64 ;;
	*) log "no Go release for $(uname -m)"; exit 1 ;;
	esac
	url="https://dl.google.com/go/go${ver}.linux-${arch}.tar.gz"
	log "installing Go ${ver} from ${url}"
	local tmp
	tmp=$(mktemp -d)
	curl -fsSL -o "$tmp/go.tgz" "$url"
	echo "$(curl -fsSL "$url.sha256")  $tmp/go.tgz" | sha256sum -c --quiet -
	rm -rf /usr/local/go
	tar -C /usr/local -xzf "$tmp/go.tgz"
	rm -rf "$tmp"
}

export PATH="$PATH:/usr/local/go/bin:${HOME:-/root}/go/bin"
export GOTOOLCHAIN=auto

if [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
	install_packages
	unpack_packages
	if ! command -v go >/dev/null; then
		log "installing Debian's golang-go"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends golang-go >/dev/null
	fi
	if (($(go_minor) < 21)); then
		install_go_release
	fi
else
	log "not root or no apt-get: installing nothing"
fi

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
#     traceroute iputils-tracepath iputils-ping iperf3; the collectors the
#     NAT event log is tested against: tshark, nfdump (nfcapd) and rsyslog;
#     groff-base (the man page test) and prometheus (its promtool tests the
#     alert rules and the metrics). A vsftpd, iperf3, nfcapd, rsyslogd or
#     prometheus service installed here is stopped and disabled again: the
#     tests start their own, and use only promtool;
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

packages=(vsftpd lftp curl ca-certificates iproute2 nftables ethtool tcpdump procps traceroute iputils-tracepath iputils-ping iperf3 tshark nfdump rsyslog groff-base prometheus)

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
	for p in vsftpd iperf3 nfdump rsyslog prometheus; do
		if [[ " ${missing[*]} " == *" $p "* ]] && command -v systemctl >/dev/null; then
			systemctl disable --now "$p" >/dev/null 2>&1 || true
		fi
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

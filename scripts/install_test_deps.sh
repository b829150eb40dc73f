#!/bin/sh
# Install the system packages the tests need, each one only if it is missing:
# Debian's ZooKeeper (the HA tests) and Chromium with its driver (the web UI's browser test).
set -eu
missing=""
if ! [ -x /usr/share/zookeeper/bin/zkServer.sh ] && ! [ -f /usr/share/java/zookeeper.jar ]; then
    missing="$missing zookeeper"
fi
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian packages:$missing" >&2
    apt-get update -qq
    for package in $missing; do
        # One at a time, so that one that cannot be installed leaves the others installed.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null \
            || echo "warning: could not install $package" >&2
    done
else
    echo "warning: missing$missing and cannot install here (need root + apt-get)" >&2
fi

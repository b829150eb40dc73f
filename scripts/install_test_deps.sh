#!/bin/sh
# Install the system packages the tests need: Debian's ZooKeeper (for the HA tests).
set -eu
if [ -x /usr/share/zookeeper/bin/zkServer.sh ] || [ -f /usr/share/java/zookeeper.jar ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's zookeeper package" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null
else
    echo "warning: ZooKeeper is not installed and cannot be installed here (need root + apt-get)" >&2
fi

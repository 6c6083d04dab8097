#!/usr/bin/env bash
# java.sh - OpenJDK: javac compiles ZipStress.java (under glibc and preloaded:
# the class files must be identical), then 16 threads deflate/inflate direct
# ByteBuffers and gzip heap arrays, verifying every round; the checksums
# printed must match glibc's. Skips (77) only when no JDK can be found.
. "$(dirname "$0")/lib.sh"
if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
	skip "no java/javac (default-jdk-headless could not be installed: make test-integration installs it as root)"
fi
unset JAVA_TOOL_OPTIONS _JAVA_OPTIONS JDK_JAVA_OPTIONS	# no surprises from the environment

scenario() {
	mkdir -p classes
	javac -J-Xmx256m -d classes "$INTEG_SRC/ZipStress.java" || return 1
	sha256sum classes/*.class | sed 's|  classes/| |'
	java -Xmx256m -XX:MaxDirectMemorySize=512m -XX:+UseParallelGC -cp classes ZipStress
}
run_both java scenario 18

#!/usr/bin/env bash
# gcc.sh - gcc (cc1, as, collect2, ld all preloaded) compiles gcc_main.c and
# a generated file of 1500 functions at -O2, links and runs the program. The
# disassembly of both objects and the program's output must match glibc's.
. "$(dirname "$0")/lib.sh"
need gcc objdump

scenario() {
	awk 'BEGIN {
		for (i = 0; i < 1500; i++) {
			printf "static unsigned long long f%d(unsigned long long x)\n{\n", i
			printf "\tunsigned long long a[%d];\n", 4 + i % 13
			printf "\tfor (int k = 0; k < %d; k++)\n\t\ta[k] = x * %d + k * (x ^ %d);\n", 4 + i % 13, i + 3, i * 7
			printf "\tx ^= a[%d] + (x >> %d);\n", i % 4, 1 + i % 31
			if (i > 0)
				printf "\treturn x + f%d(x >> 1) %% %d;\n}\n", i - 1, 97 + i
			else
				printf "\treturn x;\n}\n"
		}
		printf "unsigned long long gen_sum(unsigned long long x);\n"
		printf "unsigned long long gen_sum(unsigned long long x)\n{\n\treturn f1499(x);\n}\n"
	}' > gcc_gen.c || return 1
	cp "$INTEG_SRC/gcc_main.c" . || return 1
	gcc -std=c11 -O2 -Wall -c gcc_main.c -o gcc_main.o || return 1
	gcc -std=c11 -O2 -Wall -c gcc_gen.c -o gcc_gen.o || return 1
	gcc -o prog gcc_main.o gcc_gen.o || return 1
	objdump -d --no-show-raw-insn gcc_main.o | tail -n +3 | sha256sum | sed 's/-$/gcc_main.o disassembly/'
	objdump -d --no-show-raw-insn gcc_gen.o | tail -n +3 | sha256sum | sed 's/-$/gcc_gen.o disassembly/'
	./prog
}
run_both gcc scenario 4

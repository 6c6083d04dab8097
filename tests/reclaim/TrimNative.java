/*
 * TrimNative.java - the JVM side of jcmd_trim.sh: allocates ~256 MiB of
 * native memory through the JVM's own malloc paths (Unsafe.allocateMemory,
 * which is os::malloc, in sizes from 64 B to 1 MiB, every page written;
 * plus zlib Deflaters, whose state zlib mallocs), frees all of it
 * (freeMemory, Deflater.end), prints "READY <pid> <bytes>" and waits
 * (at most 120 s) for jcmd System.trim_native_heap from outside.
 */
import java.lang.reflect.Field;
import java.util.Random;
import java.util.zip.Deflater;

public class TrimNative {
	public static void main(String[] args) throws Exception {
		Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
		f.setAccessible(true);
		sun.misc.Unsafe u = (sun.misc.Unsafe) f.get(null);
		Random rnd = new Random(7);
		long target = 256L << 20, total = 0;
		long[] addr = new long[1 << 16];
		int n = 0;
		while (total < target && n < addr.length) {
			long sz = 64L << rnd.nextInt(15);	/* 64 B .. 1 MiB */
			sz += rnd.nextInt((int) sz);
			if (sz > (1 << 20))
				sz = 1 << 20;
			long a = u.allocateMemory(sz);
			u.setMemory(a, sz, (byte) 0x5a);
			addr[n++] = a;
			total += sz;
		}
		Deflater[] d = new Deflater[200];
		byte[] in = new byte[1 << 16], out = new byte[1 << 17];
		rnd.nextBytes(in);
		for (int i = 0; i < d.length; i++) {
			d[i] = new Deflater(9);
			d[i].setInput(in);
			d[i].finish();
			d[i].deflate(out);
		}
		for (int i = 0; i < n; i++)
			u.freeMemory(addr[i]);
		for (Deflater x : d)
			x.end();
		System.gc();
		System.out.println("READY " + ProcessHandle.current().pid() + " " + total);
		System.out.flush();
		Thread.sleep(120000);
	}
}

/*
 * NativeChurn.java - a JVM service that churns *native* memory (the JVM story
 * of DESIGN.md): run it under each allocator with LD_PRELOAD and watch RSS.
 *
 * What it does, all from fixed seeds:
 *  - a pool of worker threads that grows to `high` workers in high-load
 *    phases and shrinks to `low` workers in low-load phases (threads exit
 *    and new ones start); each worker also retires on its own after 3-12 s
 *    and is replaced, so threads come and go all the time;
 *  - each task is one of: a Deflater/Inflater round trip (zlib's state is
 *    malloc'd natively; end() is called on 70 % of them, the rest are left
 *    to the GC's cleaners, as real services do), a GZIP stream round trip
 *    (closed 80 % of the time), a direct ByteBuffer of 512 B..64 KiB kept in
 *    a per-worker window (deep in high load, shallow in low load; dropped
 *    buffers are freed by their cleaner after a GC), or a few short native
 *    malloc/free pairs (Unsafe.allocateMemory, i.e. os::malloc, as JNI code
 *    does);
 *  - every 0.5-2 s each worker makes a burst of 16-96 blocks of 16-128 KiB
 *    (native malloc), holds them for 5-50 ms and frees them, except 1 % of
 *    them which are kept 10-40 s: the long-lived stragglers that pin
 *    glibc's per-thread arenas and make its RSS climb.
 *
 * Phases (stdout, for bench/run): PHASE high / PHASE low at each switch and
 * PHASE settled 2 s into each low phase (live = native bytes held by bursts
 * and stragglers; zlib and direct buffers are not counted). At the end one
 * line: RESULT ops=<tasks> secs=<wall> cpu_secs=<process CPU> ...
 *
 * Arguments: secs=60 seed=1 high=40 low=6 high_ms=6000 low_ms=5000
 * Run with a small heap (-Xmx256m) so that the Java heap is not the story.
 */
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.reflect.Field;
import java.nio.ByteBuffer;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.atomic.AtomicLong;
import java.util.zip.CRC32;
import java.util.zip.DataFormatException;
import java.util.zip.Deflater;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import java.util.zip.Inflater;

public final class NativeChurn {
	static final sun.misc.Unsafe U = unsafe();
	static final AtomicLong tasks = new AtomicLong();
	static final AtomicLong bad = new AtomicLong();
	static final AtomicLong nativeLive = new AtomicLong();
	static final AtomicLong started = new AtomicLong();
	static volatile boolean highLoad = true;
	static volatile boolean stopAll = false;
	static long seed;

	/* Long-lived stragglers: address, size, expiry (ms). */
	static final class Straggler {
		final long addr, size, expires;

		Straggler(long addr, long size, long expires)
		{
			this.addr = addr;
			this.size = size;
			this.expires = expires;
		}
	}

	static final List<Straggler> stragglers = new ArrayList<>();

	static sun.misc.Unsafe unsafe()
	{
		try {
			Field f = sun.misc.Unsafe.class.getDeclaredField("theUnsafe");
			f.setAccessible(true);
			return (sun.misc.Unsafe) f.get(null);
		} catch (ReflectiveOperationException e) {
			throw new RuntimeException(e);
		}
	}

	/* Compressible data: words from a small alphabet, like logs or JSON. */
	static byte[] payload(SplittableRandom r, int n)
	{
		byte[] b = new byte[n];
		String[] words = { "alpha", "beta", "\"id\":", "{\"user\":", "GET /api/v1/",
				   "200 OK", "timeout", "0x7f3a", "node-17", "\n" };
		int i = 0;
		while (i < n) {
			String w = words[r.nextInt(words.length)];
			for (int k = 0; k < w.length() && i < n; k++)
				b[i++] = (byte) w.charAt(k);
			if (i < n)
				b[i++] = (byte) (r.nextInt(4) == 0 ? '0' + r.nextInt(10) : ' ');
		}
		return b;
	}

	static long crc(byte[] b, int off, int len)
	{
		CRC32 c = new CRC32();
		c.update(b, off, len);
		return c.getValue();
	}

	static final class Worker extends Thread {
		final SplittableRandom r;
		final long retireAt;
		volatile boolean retire = false;
		final ArrayDeque<ByteBuffer> window = new ArrayDeque<>();
		long nextBurst;

		Worker(long serial)
		{
			super("churn-" + serial);
			setDaemon(true);
			r = new SplittableRandom(seed * 1000003L + serial);
			retireAt = System.currentTimeMillis() + 3000 + r.nextInt(9000);
			nextBurst = System.currentTimeMillis() + 500 + r.nextInt(1500);
		}

		@Override
		public void run()
		{
			try {
				while (!stopAll && !retire && System.currentTimeMillis() < retireAt) {
					task();
					tasks.incrementAndGet();
					long now = System.currentTimeMillis();
					if (now >= nextBurst) {
						burst();
						nextBurst = now + 500 + r.nextInt(1500);
					}
				}
			} catch (IOException | DataFormatException | InterruptedException e) {
				bad.incrementAndGet();
				System.err.println("worker failed: " + e);
			}
			window.clear();	/* freed by the buffers' cleaners */
		}

		void task() throws IOException, DataFormatException
		{
			int t = r.nextInt(100);
			if (t < 35)
				zip();
			else if (t < 55)
				gzip();
			else if (t < 80)
				direct();
			else
				smallNative();
		}

		void zip() throws DataFormatException
		{
			byte[] in = payload(r, 4096 + r.nextInt(28 * 1024));
			Deflater d = new Deflater(1 + r.nextInt(9));
			d.setInput(in);
			d.finish();
			byte[] out = new byte[in.length + 64];
			int n = 0;
			while (!d.finished())
				n += d.deflate(out, n, out.length - n);
			if (r.nextInt(10) < 7)
				d.end();
			Inflater f = new Inflater();
			f.setInput(out, 0, n);
			byte[] back = new byte[in.length];
			int m = 0;
			while (!f.finished() && m < back.length) {
				int k = f.inflate(back, m, back.length - m);
				if (k == 0 && (f.needsInput() || f.needsDictionary()))
					break;
				m += k;
			}
			if (r.nextInt(10) < 7)
				f.end();
			if (m != in.length || crc(back, 0, m) != crc(in, 0, in.length))
				bad.incrementAndGet();
		}

		void gzip() throws IOException
		{
			byte[] in = payload(r, 2048 + r.nextInt(14 * 1024));
			ByteArrayOutputStream bos = new ByteArrayOutputStream();
			GZIPOutputStream gz = new GZIPOutputStream(bos, 512 + r.nextInt(8192));
			gz.write(in);
			boolean close = r.nextInt(10) < 8;
			if (close)
				gz.close();
			else
				gz.finish();	/* its Deflater is left to the cleaner */
			GZIPInputStream gi = new GZIPInputStream(new ByteArrayInputStream(bos.toByteArray()));
			byte[] back = gi.readAllBytes();
			if (close)
				gi.close();
			if (back.length != in.length || crc(back, 0, back.length) != crc(in, 0, in.length))
				bad.incrementAndGet();
		}

		void direct()
		{
			int n = 512 + r.nextInt(64 * 1024 - 512);
			ByteBuffer b = ByteBuffer.allocateDirect(n);
			for (int i = 0; i < n; i += 4096)
				b.put(i, (byte) i);
			window.addLast(b);
			int depth = highLoad ? 48 : 6;
			while (window.size() > depth)
				window.removeFirst();
		}

		void smallNative()
		{
			long[] a = new long[8];
			for (int i = 0; i < a.length; i++) {
				long n = 16 + r.nextInt(4096);
				a[i] = U.allocateMemory(n);
				U.putByte(a[i], (byte) i);
				U.putByte(a[i] + n - 1, (byte) i);
			}
			for (int i = a.length - 1; i >= 0; i--)
				U.freeMemory(a[i]);
		}

		void burst() throws InterruptedException
		{
			int n = 16 + r.nextInt(81);
			long[] addr = new long[n];
			long[] size = new long[n];
			long total = 0;
			for (int i = 0; i < n; i++) {
				size[i] = 16 * 1024 + r.nextInt(112 * 1024 + 1);
				addr[i] = U.allocateMemory(size[i]);
				for (long o = 0; o < size[i]; o += 4096)
					U.putByte(addr[i] + o, (byte) o);
				total += size[i];
			}
			nativeLive.addAndGet(total);
			Thread.sleep(5 + r.nextInt(46));
			long now = System.currentTimeMillis();
			for (int i = 0; i < n; i++) {
				if (r.nextInt(100) == 0) {
					synchronized (stragglers) {
						stragglers.add(new Straggler(addr[i], size[i],
								now + 10000 + r.nextInt(30000)));
					}
				} else {
					U.freeMemory(addr[i]);
					nativeLive.addAndGet(-size[i]);
				}
			}
		}
	}

	static void reapStragglers(boolean all)
	{
		long now = System.currentTimeMillis();
		synchronized (stragglers) {
			for (Iterator<Straggler> it = stragglers.iterator(); it.hasNext();) {
				Straggler s = it.next();
				if (all || s.expires <= now) {
					U.freeMemory(s.addr);
					nativeLive.addAndGet(-s.size);
					it.remove();
				}
			}
		}
	}

	static long arg(String[] args, String key, long dflt)
	{
		for (String a : args)
			if (a.startsWith(key + "="))
				return Long.parseLong(a.substring(key.length() + 1));
		return dflt;
	}

	static void phase(String name)
	{
		System.out.println("PHASE " + name + " live=" + nativeLive.get());
		System.out.flush();
	}

	public static void main(String[] args) throws Exception
	{
		long secs = arg(args, "secs", 60);
		seed = arg(args, "seed", 1);
		int high = (int) arg(args, "high", 40);
		int low = (int) arg(args, "low", 6);
		long highMs = arg(args, "high_ms", 6000);
		long lowMs = arg(args, "low_ms", 5000);
		com.sun.management.OperatingSystemMXBean os =
			(com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

		List<Worker> pool = new ArrayList<>();
		long serial = 0;
		long t0 = System.nanoTime();
		long c0 = os.getProcessCpuTime();
		long end = System.currentTimeMillis() + secs * 1000;
		long phaseEnd = System.currentTimeMillis() + highMs;
		long settleAt = Long.MAX_VALUE;
		highLoad = true;
		phase("high");
		while (System.currentTimeMillis() < end) {
			long now = System.currentTimeMillis();
			if (now >= phaseEnd) {
				highLoad = !highLoad;
				phaseEnd = now + (highLoad ? highMs : lowMs);
				settleAt = highLoad ? Long.MAX_VALUE : now + 2000;
				phase(highLoad ? "high" : "low");
			}
			if (now >= settleAt) {
				settleAt = Long.MAX_VALUE;
				phase("settled");
			}
			pool.removeIf(w -> !w.isAlive());
			int target = highLoad ? high : low;
			int active = 0;
			for (Worker w : pool)
				if (!w.retire)
					active++;
			for (Worker w : pool) {
				if (active <= target)
					break;
				if (!w.retire) {
					w.retire = true;
					active--;
				}
			}
			while (active < target) {
				Worker w = new Worker(serial++);
				w.start();
				started.incrementAndGet();
				pool.add(w);
				active++;
			}
			reapStragglers(false);
			Thread.sleep(50);
		}
		stopAll = true;
		for (Worker w : pool)
			w.join();
		long t1 = System.nanoTime();
		long c1 = os.getProcessCpuTime();
		reapStragglers(true);
		phase("end");
		System.out.printf("RESULT ops=%d secs=%.3f cpu_secs=%.3f threads_started=%d bad=%d%n",
				  tasks.get(), (t1 - t0) / 1e9, (c1 - c0) / 1e9, started.get(), bad.get());
		System.out.flush();
		System.exit(bad.get() == 0 ? 0 : 1);
	}
}

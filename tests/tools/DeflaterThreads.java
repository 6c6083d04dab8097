/*
 * DeflaterThreads.java - a JVM that allocates natively from many threads,
 * the shape of the JVM RSS story: each thread keeps zlib Deflaters (native
 * memory, malloc'd by libz inside the JVM) and churns more of them, so glibc
 * spreads the JVM's threads over its arenas. Prints "ready" when every
 * thread has done its work, then waits for stdin to close.
 *
 *   java DeflaterThreads NTHREADS KEEP_PER_THREAD
 */
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.zip.Deflater;

public class DeflaterThreads {
	public static void main(String[] args) throws Exception {
		int nthreads = Integer.parseInt(args[0]);
		int keep = Integer.parseInt(args[1]);
		CountDownLatch done = new CountDownLatch(nthreads);
		CountDownLatch exit = new CountDownLatch(1);
		List<Thread> threads = new ArrayList<>();
		byte[] input = new byte[64 * 1024];
		for (int i = 0; i < input.length; i++)
			input[i] = (byte) ((i * 31) ^ (i >> 7));
		for (int t = 0; t < nthreads; t++) {
			Thread th = new Thread(() -> {
				List<Deflater> kept = new ArrayList<>();
				byte[] out = new byte[128 * 1024];
				for (int i = 0; i < keep * 4; i++) {
					Deflater d = new Deflater(9);
					d.setInput(input);
					d.finish();
					while (!d.finished())
						d.deflate(out);
					if (i % 4 == 0)
						kept.add(d);	/* held: its zlib state stays malloc'd */
					else
						d.end();
				}
				done.countDown();
				try {
					exit.await();
				} catch (InterruptedException e) {
				}
				for (Deflater d : kept)
					d.end();
			});
			th.start();
			threads.add(th);
		}
		done.await();
		System.out.println("ready");
		System.out.flush();
		while (System.in.read() >= 0)
			;
		exit.countDown();
		for (Thread th : threads)
			th.join();
	}
}

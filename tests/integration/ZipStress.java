/*
 * ZipStress.java - many threads using java.util.zip Deflater/Inflater on
 * direct ByteBuffers (native zlib state and direct buffers are malloc'd by
 * the JVM), for tests/integration/java.sh. Every round's inflated output is
 * verified against its input inside the program (a mismatch exits 1); the
 * printed CRC32/Adler32 checksums are compared with a glibc run by the script.
 */
import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.zip.Adler32;
import java.util.zip.CRC32;
import java.util.zip.Deflater;
import java.util.zip.GZIPInputStream;
import java.util.zip.GZIPOutputStream;
import java.util.zip.Inflater;

public class ZipStress {
	static final int THREADS = 16;
	static final int ROUNDS = 40;

	static void fill(ByteBuffer b, Random r) {
		/* compressible: runs of a few symbols mixed with noise */
		byte[] alphabet = "abcdefghij      \n".getBytes();
		while (b.hasRemaining()) {
			int run = 1 + r.nextInt(40);
			byte v = r.nextInt(8) == 0 ? (byte) r.nextInt(256) : alphabet[r.nextInt(alphabet.length)];
			for (int i = 0; i < run && b.hasRemaining(); i++)
				b.put(v);
		}
		b.flip();
	}

	static String work(int t) throws Exception {
		Random r = new Random(1000 + t);
		CRC32 all = new CRC32();
		Adler32 adl = new Adler32();
		long inBytes = 0, outBytes = 0;
		List<ByteBuffer> keep = new ArrayList<>();

		for (int i = 0; i < ROUNDS; i++) {
			int n = 1 + r.nextInt(256 << 10);
			ByteBuffer src = ByteBuffer.allocateDirect(n);
			fill(src, r);
			Deflater d = new Deflater(i % 10);
			d.setInput(src.duplicate());
			d.finish();
			ByteBuffer comp = ByteBuffer.allocateDirect(n + n / 8 + 1024);
			while (!d.finished()) {
				d.deflate(comp);
				if (!comp.hasRemaining() && !d.finished()) {
					ByteBuffer bigger = ByteBuffer.allocateDirect(comp.capacity() * 2);
					comp.flip();
					bigger.put(comp);
					comp = bigger;
				}
			}
			if (i % 7 != 0)
				d.end();	/* the rest are left to the cleaner */
			comp.flip();

			Inflater inf = new Inflater();
			inf.setInput(comp.duplicate());
			ByteBuffer out = ByteBuffer.allocateDirect(n);
			while (!inf.finished()) {
				if (inf.inflate(out) == 0 && (inf.needsInput() || inf.needsDictionary()))
					break;
			}
			inf.end();
			out.flip();
			if (!out.equals(src))
				throw new RuntimeException("thread " + t + " round " + i + ": inflate(deflate(x)) != x");

			CRC32 c = new CRC32();
			c.update(src.duplicate());
			all.update((int) c.getValue());
			adl.update(comp.duplicate());
			inBytes += n;
			outBytes += comp.remaining();

			/* heap arrays through the stream API as well */
			byte[] arr = new byte[n];
			src.duplicate().get(arr);
			ByteArrayOutputStream bos = new ByteArrayOutputStream();
			try (GZIPOutputStream gz = new GZIPOutputStream(bos)) {
				gz.write(arr);
			}
			byte[] back;
			try (GZIPInputStream gin = new GZIPInputStream(new java.io.ByteArrayInputStream(bos.toByteArray()))) {
				back = gin.readAllBytes();
			}
			if (!java.util.Arrays.equals(arr, back))
				throw new RuntimeException("thread " + t + " round " + i + ": gzip round trip differs");

			if (r.nextInt(4) == 0)
				keep.add(comp);	/* some direct buffers live across rounds */
		}
		return String.format("thread %2d: %d rounds, %d bytes in, %d bytes deflated, crc32-of-crcs %08x, adler32 %08x, kept %d",
				     t, ROUNDS, inBytes, outBytes, all.getValue(), adl.getValue(), keep.size());
	}

	public static void main(String[] args) throws Exception {
		ExecutorService ex = Executors.newFixedThreadPool(THREADS);
		List<Future<String>> fs = new ArrayList<>();
		for (int t = 0; t < THREADS; t++) {
			final int tt = t;
			fs.add(ex.submit(() -> work(tt)));
		}
		for (Future<String> f : fs)
			System.out.println(f.get());
		ex.shutdown();
		System.gc();	/* run the cleaners of the un-ended Deflaters */
		System.out.println("ok");
	}
}

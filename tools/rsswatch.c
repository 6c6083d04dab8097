/*
 * rsswatch.c - record RSS over time to CSV, and plot several recordings.
 *
 *   rsswatch [-i ms] [-t s] [-o out.csv] [--label L] PID
 *   rsswatch [-i ms] [-t s] [-o out.csv] [--label L] -- command [args...]
 *   rsswatch --plot out.png [--title T] a.csv [b.csv ...]
 *
 * Samples VmRSS from /proc/PID/status every interval. For a process running
 * ebbmalloc with a stats file (EBB_STATS_FILE / stats_file=, looked up in
 * the process's environment on every sample until found, since a command
 * such as `ebbrun -o stats_file=... -- prog` only sets it after exec) the
 * allocator's active and dirty bytes are recorded too. The CSV is
 *
 *   # rsswatch label=L pid=P cmd=...
 *   time_s,rss_kib[,active_kib,dirty_kib]
 *
 * with empty active/dirty fields for samples taken before the stats file
 * appeared. Samples are kept in memory and the file is rewritten (to a
 * temporary name, then renamed) every 10 s and at the end, so a recording
 * stopped with Ctrl-C or cut short is still complete up to that point.
 * In command mode rsswatch exits with the command's status; -t (or a
 * SIGTERM to rsswatch) ends the recording and the command (SIGTERM).
 *
 * --plot renders every file on one chart with gnuplot (RSS solid, active
 * dashed), as out.png and out.svg; the label of a file is its "label="
 * comment, or its file name.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tools.h"

struct sample {
	double t_s;
	long long rss_kib;
	long long active_kib;	/* -1: no stats */
	long long dirty_kib;
};

struct rec {
	struct sample *s;
	size_t n, cap;
	int have_stats;
	const char *out;	/* NULL: stdout at the end */
	char label[128];
	char cmd[256];
	pid_t pid;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: rsswatch [-i ms] [-t s] [-o out.csv] [--label L] PID\n"
		"       rsswatch [-i ms] [-t s] [-o out.csv] [--label L] -- command [args...]\n"
		"       rsswatch --plot out.png [--title T] a.csv [b.csv ...]\n"
		"\n"
		"Records the RSS of a process (and, under ebbmalloc with a stats file,\n"
		"its active and dirty bytes) over time as CSV:\n"
		"  time_s,rss_kib[,active_kib,dirty_kib]\n"
		"until it exits, -t seconds pass, or Ctrl-C. With a command, runs it and\n"
		"exits with its status (-t ends the command with SIGTERM).\n"
		"\n"
		"  -i ms        sampling interval (default 200)\n"
		"  -t s         stop after s seconds\n"
		"  -o out.csv   write the CSV there (default: stdout, at the end)\n"
		"  --label L    name of this run in plots (default: the command name)\n"
		"  --plot out.png a.csv ...\n"
		"               draw the runs on one chart: out.png and out.svg (gnuplot)\n"
		"  --title T    the chart's title\n"
		"  -h, --help   this text\n"
		"\n"
		"Example:\n"
		"  rsswatch -o glibc.csv -- ./churn\n"
		"  rsswatch -o ebb.csv -- ebbrun -o stats_file=/tmp/ebb.%%p -- ./churn\n"
		"  rsswatch --plot churn.png glibc.csv ebb.csv\n");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_csv(const struct rec *r)
{
	char tmp[4200];
	FILE *f;
	size_t i;

	if (r->out) {
		snprintf(tmp, sizeof(tmp), "%s.tmp%d", r->out, (int)getpid());
		f = fopen(tmp, "w");
		if (!f) {
			fprintf(stderr, "rsswatch: %s: %s\n", tmp, strerror(errno));
			return -1;
		}
	} else {
		f = stdout;
	}
	fprintf(f, "# rsswatch label=%s pid=%d cmd=%s\n", r->label, (int)r->pid, r->cmd);
	fprintf(f, "time_s,rss_kib%s\n", r->have_stats ? ",active_kib,dirty_kib" : "");
	for (i = 0; i < r->n; i++) {
		const struct sample *s = &r->s[i];

		fprintf(f, "%.3f,%lld", s->t_s, s->rss_kib);
		if (r->have_stats) {
			if (s->active_kib >= 0)
				fprintf(f, ",%lld,%lld", s->active_kib, s->dirty_kib);
			else
				fprintf(f, ",,");
		}
		fprintf(f, "\n");
	}
	if (!r->out)
		return fflush(f) ? -1 : 0;
	if (fclose(f) != 0 || rename(tmp, r->out) != 0) {
		fprintf(stderr, "rsswatch: %s: %s\n", r->out, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int add_sample(struct rec *r, const struct sample *s)
{
	if (r->n == r->cap) {
		size_t nc = r->cap ? r->cap * 2 : 1024;
		struct sample *ns = realloc(r->s, nc * sizeof(*ns));

		if (!ns)
			return -1;
		r->s = ns;
		r->cap = nc;
	}
	r->s[r->n++] = *s;
	return 0;
}

/* One sample of pid; returns 0, or -1 once the process is gone. */
static int sample(struct rec *r, double t0, char *sfpath, size_t sflen, int *sf_known)
{
	struct sample s = { .active_kib = -1, .dirty_kib = -1 };
	struct ebb_stats_file f;

	s.rss_kib = proc_status_kib(r->pid, "VmRSS");
	if (s.rss_kib < 0)
		return -1;	/* gone, or a zombie (no VmRSS line) */
	s.t_s = now_s() - t0;
	if (!*sf_known && statsfile_path(r->pid, sfpath, sflen) == 0)
		*sf_known = 1;
	if (*sf_known && statsfile_read(sfpath, &f) == 0 && f.pid == (uint64_t)r->pid) {
		s.active_kib = (long long)(f.stats.active_bytes / 1024);
		s.dirty_kib = (long long)(f.stats.dirty_bytes / 1024);
		r->have_stats = 1;
	}
	return add_sample(r, &s);
}

/* ---- --plot ---------------------------------------------------------------- */

struct series {
	const char *path;
	char label[128];
	int has_active;
};

static void csv_info(struct series *s)
{
	char line[512];
	const char *base = strrchr(s->path, '/');
	FILE *f;
	char *p;

	snprintf(s->label, sizeof(s->label), "%s", base ? base + 1 : s->path);
	p = strstr(s->label, ".csv");
	if (p && p[4] == '\0')
		*p = '\0';
	s->has_active = 0;
	f = fopen(s->path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == '#') {
			char *l = strstr(line, "label="), *e;

			if (l) {
				l += 6;
				e = strstr(l, " pid=");
				if (!e)
					e = l + strcspn(l, "\n");
				if (e > l)
					snprintf(s->label, sizeof(s->label), "%.*s", (int)(e - l), l);
			}
			continue;
		}
		if (!strncmp(line, "time_s,", 7)) {
			s->has_active = strstr(line, "active_kib") != NULL;
			break;
		}
	}
	fclose(f);
}

/* gnuplot single-quoted string: a quote is doubled */
static void gp_str(FILE *f, const char *s)
{
	fputc('\'', f);
	for (; *s; s++) {
		if (*s == '\'')
			fputc('\'', f);
		if (*s != '\n')
			fputc(*s, f);
	}
	fputc('\'', f);
}

static int find_in_path(const char *prog)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (!path)
		path = "/usr/bin:/bin";
	while (*path) {
		size_t l = strcspn(path, ":");

		snprintf(buf, sizeof(buf), "%.*s/%s", (int)l, path, prog);
		if (access(buf, X_OK) == 0)
			return 1;
		path += l;
		if (*path)
			path++;
	}
	return 0;
}

static int plot(const char *out, const char *title, char **files, int nfiles)
{
	char base[4096], png[4200], svg[4200];
	struct series *ser;
	FILE *gp;
	int i, rc, first = 1;
	size_t bl;

	if (!find_in_path("gnuplot")) {
		fprintf(stderr, "rsswatch: gnuplot is not installed: --plot needs it "
			"(Debian: apt-get install gnuplot-nox)\n");
		return 1;
	}
	snprintf(base, sizeof(base), "%s", out);
	bl = strlen(base);
	if (bl > 4 && (!strcmp(base + bl - 4, ".png") || !strcmp(base + bl - 4, ".svg")))
		base[bl - 4] = '\0';
	snprintf(png, sizeof(png), "%s.png", base);
	snprintf(svg, sizeof(svg), "%s.svg", base);

	ser = calloc((size_t)nfiles, sizeof(*ser));
	if (!ser)
		return 1;
	for (i = 0; i < nfiles; i++) {
		ser[i].path = files[i];
		if (access(files[i], R_OK) != 0) {
			fprintf(stderr, "rsswatch: %s: %s\n", files[i], strerror(errno));
			free(ser);
			return 1;
		}
		csv_info(&ser[i]);
	}

	gp = popen("gnuplot", "w");
	if (!gp) {
		fprintf(stderr, "rsswatch: cannot run gnuplot: %s\n", strerror(errno));
		free(ser);
		return 1;
	}
	fprintf(gp, "set datafile separator ','\n");
	fprintf(gp, "set xlabel 'time (s)'\nset ylabel 'MiB'\nset grid\n");
	fprintf(gp, "set key left top noenhanced\nset yrange [0:*]\n");
	fprintf(gp, "set title ");
	gp_str(gp, title ? title : "RSS over time (solid: RSS, dashed: ebbmalloc active)");
	fprintf(gp, " noenhanced\n");
	fprintf(gp, "set terminal pngcairo size 1100,650 noenhanced\nset output ");
	gp_str(gp, png);
	fprintf(gp, "\nplot ");
	for (i = 0; i < nfiles; i++) {
		char t[160];

		fprintf(gp, "%s", first ? "" : ", ");
		first = 0;
		gp_str(gp, ser[i].path);
		snprintf(t, sizeof(t), "%s RSS", ser[i].label);
		fprintf(gp, " using 1:($2/1024.0) with lines lw 2 lc %d title ", i + 1);
		gp_str(gp, t);
		if (ser[i].has_active) {
			fprintf(gp, ", ");
			gp_str(gp, ser[i].path);
			snprintf(t, sizeof(t), "%s active", ser[i].label);
			fprintf(gp, " using 1:($3/1024.0) with lines lw 1 dt 2 lc %d title ", i + 1);
			gp_str(gp, t);
			fprintf(gp, ", ");
			gp_str(gp, ser[i].path);
			snprintf(t, sizeof(t), "%s dirty", ser[i].label);
			fprintf(gp, " using 1:($4/1024.0) with lines lw 1 dt 3 lc %d title ", i + 1);
			gp_str(gp, t);
		}
	}
	fprintf(gp, "\nset terminal svg size 1100,650 noenhanced\nset output ");
	gp_str(gp, svg);
	fprintf(gp, "\nreplot\nset output\n");
	rc = pclose(gp);
	free(ser);
	if (rc != 0) {
		fprintf(stderr, "rsswatch: gnuplot failed (status %d)\n", rc);
		return 1;
	}
	printf("rsswatch: wrote %s and %s\n", png, svg);
	return 0;
}

/* ---- recording ------------------------------------------------------------- */

int main(int argc, char **argv)
{
	struct rec r = { 0 };
	const char *label = NULL, *plot_out = NULL, *title = NULL;
	long interval_ms = 200;
	double limit_s = 0, t0, last_write;
	char sfpath[4096];
	int i, sf_known = 0, child = 0, status = 0, ret = 0, reaped = 0;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--")) {
			i++;
			child = 1;
			break;
		} else if (!strcmp(a, "-i") && i + 1 < argc) {
			interval_ms = atol(argv[++i]);
			if (interval_ms <= 0) {
				fprintf(stderr, "rsswatch: -i wants a positive number of ms\n");
				return 2;
			}
		} else if (!strcmp(a, "-t") && i + 1 < argc) {
			limit_s = atof(argv[++i]);
		} else if (!strcmp(a, "-o") && i + 1 < argc) {
			r.out = argv[++i];
		} else if (!strcmp(a, "--label") && i + 1 < argc) {
			label = argv[++i];
		} else if (!strcmp(a, "--title") && i + 1 < argc) {
			title = argv[++i];
		} else if (!strcmp(a, "--plot") && i + 1 < argc) {
			plot_out = argv[++i];
		} else if (a[0] == '-') {
			fprintf(stderr, "rsswatch: unknown option '%s'\n", a);
			usage(stderr);
			return 2;
		} else {
			break;
		}
	}
	if (plot_out) {
		if (i >= argc) {
			fprintf(stderr, "rsswatch: --plot wants at least one CSV file\n");
			return 2;
		}
		return plot(plot_out, title, argv + i, argc - i);
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}

	if (child) {
		int pfd[2];
		char c;

		/* the child waits for us before exec, so sample 0 is its start */
		if (pipe(pfd) != 0) {
			perror("rsswatch: pipe");
			return 1;
		}
		r.pid = fork();
		if (r.pid < 0) {
			perror("rsswatch: fork");
			return 1;
		}
		if (r.pid == 0) {
			close(pfd[1]);
			if (read(pfd[0], &c, 1) < 0)
				_exit(127);
			close(pfd[0]);
			execvp(argv[i], argv + i);
			fprintf(stderr, "rsswatch: %s: %s\n", argv[i], strerror(errno));
			_exit(127);
		}
		close(pfd[0]);
		snprintf(r.cmd, sizeof(r.cmd), "%s", argv[i]);
		for (int k = i + 1; k < argc && strlen(r.cmd) + strlen(argv[k]) + 2 < sizeof(r.cmd); k++) {
			strcat(r.cmd, " ");
			strcat(r.cmd, argv[k]);
		}
		signal(SIGINT, SIG_IGN);	/* the command gets it; we record its end */
		t0 = now_s();
		if (write(pfd[1], "g", 1) != 1)
			perror("rsswatch: write");
		close(pfd[1]);
	} else {
		if (i + 1 != argc) {
			usage(stderr);
			return 2;
		}
		r.pid = fmt_parse_pid(argv[i]);
		if (r.pid < 0) {
			fprintf(stderr, "rsswatch: '%s' is not a pid\n", argv[i]);
			return 2;
		}
		if (!proc_alive(r.pid)) {
			fprintf(stderr, "rsswatch: no process %d\n", (int)r.pid);
			return 1;
		}
		proc_cmdline(r.pid, r.cmd, sizeof(r.cmd));
		signal(SIGINT, on_signal);
		t0 = now_s();
	}
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	for (char *p = r.cmd; *p; p++)
		if (*p == '\n')
			*p = ' ';
	if (label) {
		snprintf(r.label, sizeof(r.label), "%s", label);
	} else {
		const char *c = child ? argv[i] : r.cmd;
		const char *sl = strrchr(c, '/');
		size_t l;

		c = sl && (size_t)(sl - c) < strcspn(c, " ") ? sl + 1 : c;
		l = strcspn(c, " ");
		snprintf(r.label, sizeof(r.label), "%.*s", (int)(l < 100 ? l : 100), c);
	}

	last_write = t0;
	while (!stop) {
		struct timespec ts = { interval_ms / 1000, (interval_ms % 1000) * 1000000L };
		double now;

		if (child) {
			pid_t w = waitpid(r.pid, &status, WNOHANG);

			if (w == r.pid) {
				reaped = 1;
				break;
			}
		}
		if (sample(&r, t0, sfpath, sizeof(sfpath), &sf_known) != 0) {
			if (!child)
				break;	/* the process is gone */
		}
		now = now_s();
		if (limit_s > 0 && now - t0 >= limit_s)
			break;
		if (r.out && now - last_write >= 10.0) {
			write_csv(&r);
			last_write = now;
		}
		if (r.out && isatty(STDERR_FILENO) && r.n)
			fprintf(stderr, "\rrsswatch: %.1f s  RSS %lld KiB   ", r.s[r.n - 1].t_s,
				r.s[r.n - 1].rss_kib);
		nanosleep(&ts, NULL);
	}
	if (r.out && isatty(STDERR_FILENO))
		fprintf(stderr, "\n");
	if (child && !reaped) {
		/* stopped by -t or a signal: the recording ends, so does the command */
		kill(r.pid, SIGTERM);
		if (waitpid(r.pid, &status, 0) < 0)
			status = 0;
	}
	if (write_csv(&r) != 0)
		ret = 1;
	if (r.out) {
		long long peak = 0;
		size_t k;

		for (k = 0; k < r.n; k++)
			if (r.s[k].rss_kib > peak)
				peak = r.s[k].rss_kib;
		fprintf(stderr, "rsswatch: %zu samples of pid %d over %.1f s, peak RSS %lld KiB, "
			"last %lld KiB -> %s\n", r.n, (int)r.pid, r.n ? r.s[r.n - 1].t_s : 0.0,
			peak, r.n ? r.s[r.n - 1].rss_kib : 0LL, r.out);
	}
	free(r.s);
	if (child && !ret) {
		if (WIFEXITED(status))
			return WEXITSTATUS(status);
		if (WIFSIGNALED(status))
			return 128 + WTERMSIG(status);
	}
	return ret;
}

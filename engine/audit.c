/* audit.c - the hash-chained audit log (audit.h). */
#include "audit.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>
#include <libgen.h>
#include <limits.h>
#include <sys/file.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>

#include "buf.h"
#include "rssp_log.h"

#define AUDIT_MAX_LINE 8192
#define AUDIT_TAIL 65536

struct audit {
	pthread_mutex_t lock;
	int fd;
	int own_fd;
	char *path;              /* NULL for standard output */
	uint64_t seq;            /* seq of the last line written */
	char prev[65];           /* hex SHA-256 of the last line written */
	off_t size;              /* bytes of whole lines in the file */
	int torn;                /* a failed write may have left bytes after size */
	int reopen_failed;       /* fd < 0: the path could not be opened after a rotation */
	unsigned long long rotate_bytes;
	/* checkpoints */
	audit_seal_fn seal;
	void *seal_arg;
	char key_sha256[65];
	unsigned ckpt_lines, ckpt_seconds;
	unsigned since_ckpt;     /* lines since the last checkpoint */
	time_t last_ckpt;
	int echo_fd;
};

struct sbuf {
	char buf[AUDIT_MAX_LINE];
	size_t len;
	int overflow;
};

/* n bytes as they are; one byte of the buffer is always left free (for the newline). */
static void
sb_raw(struct sbuf *b, const char *s, size_t n)
{
	if (b->overflow)
		return;
	if (n >= sizeof(b->buf) - b->len) {
		b->overflow = 1;
		return;
	}
	memcpy(b->buf + b->len, s, n);
	b->len += n;
}

/* ,"name":<decimal v> */
static void
sb_int(struct sbuf *b, const char *name, long long v)
{
	char d[24];
	size_t i = sizeof(d);
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do {
		d[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	if (v < 0)
		d[--i] = '-';
	sb_raw(b, ",\"", 2);
	sb_raw(b, name, strlen(name));
	sb_raw(b, "\":", 2);
	sb_raw(b, d + i, sizeof(d) - i);
}

/* A JSON string, at most max bytes of s, control characters escaped. Runs of bytes
 * that need no escape are copied at once (the audit line is built for every call). */
static void
sb_str(struct sbuf *b, const char *name, const char *s, size_t max)
{
	size_t i = 0, run;
	char esc[7];

	sb_raw(b, ",\"", 2);
	sb_raw(b, name, strlen(name));
	sb_raw(b, "\":\"", 3);
	while (s != NULL && i < max && s[i] != '\0') {
		for (run = i; run < max && s[run] != '\0'; run++) {
			unsigned char c = (unsigned char)s[run];
			if (c == '"' || c == '\\' || c < 0x20 || c == 0x7f)
				break;
		}
		sb_raw(b, s + i, run - i);
		if (run >= max || s[run] == '\0')
			break;
		{
			unsigned char c = (unsigned char)s[run];
			if (c == '"' || c == '\\') {
				esc[0] = '\\';
				esc[1] = (char)c;
				sb_raw(b, esc, 2);
			} else {
				memcpy(esc, "\\u00", 4);
				rssp_hex(esc + 4, &c, 1);
				sb_raw(b, esc, 6);
			}
		}
		i = run + 1;
	}
	sb_raw(b, "\"", 1);
}

static void
hex_sha256(const char *buf, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)buf, len, md);
	rssp_hex(out, md, sizeof(md));
}

static int
is_hex64(const char *s)
{
	size_t i;

	for (i = 0; i < 64; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Parses the two fields the chain needs from a line (without newline): its seq and
 * its prev. The writer puts seq second and prev last, so they are found at fixed
 * places whatever the strings in between hold. Returns 0 or RSSP_E_INVAL. */
static int
parse_line(const char *line, size_t len, uint64_t *seqp, char prev[65])
{
	static const char tail[] = ",\"prev\":\"";
	const char *p;
	char *end;
	unsigned long long seq;

	if (len < 64 + sizeof(tail) + 2 || strncmp(line, "{\"time\":\"", 9) != 0)
		return RSSP_E_INVAL;
	p = memchr(line + 9, '"', len - 9);
	if (p == NULL || strncmp(p, "\",\"seq\":", 8) != 0)
		return RSSP_E_INVAL;
	p += 8;
	if (*p < '1' || *p > '9')
		return RSSP_E_INVAL;
	errno = 0;
	seq = strtoull(p, &end, 10);
	if (errno != 0 || *end != ',')
		return RSSP_E_INVAL;
	p = line + len - 2 - 64 - (sizeof(tail) - 1);
	if (memcmp(p, tail, sizeof(tail) - 1) != 0 || memcmp(line + len - 2, "\"}", 2) != 0)
		return RSSP_E_INVAL;
	p += sizeof(tail) - 1;
	if (!is_hex64(p))
		return RSSP_E_INVAL;
	memcpy(prev, p, 64);
	prev[64] = '\0';
	*seqp = seq;
	return 0;
}

/* Reads the last line of an existing log to continue its chain. A last line without
 * its newline (a write cut by a crash) is cut off first. *sizep gets the size of the
 * whole lines. */
static int
load_tail_mode(int fd, uint64_t *seqp, char prev[65], off_t *sizep, int may_cut)
{
	char *buf = NULL, *start, *nl;
	off_t size, from;
	ssize_t n;
	size_t got = 0, want;
	uint64_t seq;
	char lastprev[65];
	int r = RSSP_E_IO;

	if ((size = lseek(fd, 0, SEEK_END)) < 0)
		goto out;
	from = size > AUDIT_TAIL ? size - AUDIT_TAIL : 0;
	want = (size_t)(size - from);
	if ((buf = malloc(want + 1)) == NULL) {
		r = RSSP_E_NOMEM;
		goto out;
	}
	while (got < want) {
		n = pread(fd, buf + got, want - got, from + (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto out;
		got += (size_t)n;
	}
	buf[got] = '\0';
	if (got > 0 && buf[got - 1] != '\n' && !may_cut) {
		log_error("audit log: the last line has no newline");
		r = RSSP_E_INVAL;
		goto out;
	}
	if (got > 0 && buf[got - 1] != '\n') {
		/* a torn last line: never acknowledged (a decision is released only after its
		 * line is whole), cut back to the last whole line */
		nl = memrchr(buf, '\n', got);
		if (nl == NULL && from != 0) {
			log_error("audit log: a last line longer than %d bytes without a newline",
			    AUDIT_TAIL);
			r = RSSP_E_INVAL;
			goto out;
		}
		size = nl != NULL ? from + (off_t)(nl - buf) + 1 : 0;
		log_warn("audit log: cutting off a torn last line (%lld bytes without a newline)",
		    (long long)(from + (off_t)got - size));
		if (ftruncate(fd, size) != 0) {
			log_error("cannot cut the torn audit line: %s", strerror(errno));
			goto out;
		}
		got = nl != NULL ? (size_t)(nl - buf) + 1 : 0;
		buf[got] = '\0';
	}
	*sizep = size;
	if (size == 0 || got == 0) {
		if (size != 0) {
			r = RSSP_E_INVAL;
			goto out;
		}
		*seqp = 0;
		memset(prev, '0', 64);
		prev[64] = '\0';
		r = 0;
		goto out;
	}
	r = RSSP_E_INVAL;
	buf[got - 1] = '\0';
	nl = strrchr(buf, '\n');
	start = nl != NULL ? nl + 1 : buf;
	if (nl == NULL && from != 0)
		goto out;
	if (parse_line(start, strlen(start), &seq, lastprev) != 0) {
		log_error("the last line of the audit log is not an audit line");
		goto out;
	}
	*seqp = seq;
	hex_sha256(start, strlen(start), prev);
	r = 0;
out:
	free(buf);
	return r;
}

static int
load_tail(int fd, uint64_t *seqp, char prev[65], off_t *sizep)
{
	return load_tail_mode(fd, seqp, prev, sizep, 1);
}

static int
load_tail_ro(int fd, uint64_t *seqp, char prev[65], off_t *sizep)
{
	return load_tail_mode(fd, seqp, prev, sizep, 0);
}

/* Opens and locks path for appending. Returns the fd or a negative RSSP_E*. */
static int
open_locked(const char *path, int quiet)
{
	int fd, e;

	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		if (!quiet)
			log_error("cannot open audit log %s: %s", path, strerror(errno));
		return RSSP_E_IO;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		e = errno;
		if (quiet)
			;
		else if (e == EWOULDBLOCK)
			log_error("audit log %s is in use by another engine", path);
		else
			log_error("cannot lock audit log %s: %s", path, strerror(e));
		close(fd);
		return e == EWOULDBLOCK ? RSSP_E_CONFLICT : RSSP_E_IO;
	}
	return fd;
}

static int rotated_files(const char *path, char ***listp, size_t *np, time_t **mtimes_out);

/* The chain's last line among the rotated files of path (the highest seq), if any. */
static int
continue_rotated(const char *path, uint64_t *seqp, char prev[65])
{
	char **list = NULL, p[65];
	size_t n = 0, i, best = 0;
	uint64_t seq, top = 0;
	off_t size;
	int fd, r, found = 0;

	if ((r = rotated_files(path, &list, &n, NULL)) != 0)
		return r;
	for (i = 0; i < n; i++) {
		if ((fd = open(list[i], O_RDONLY | O_CLOEXEC)) < 0)
			continue;
		/* read-only: a torn fragment there is not cut (and that file is skipped) */
		r = load_tail_ro(fd, &seq, p, &size);
		close(fd);
		if (r == 0 && size > 0 && seq > top) {
			top = seq;
			best = i;
			*seqp = seq;
			memcpy(prev, p, 65);
			found = 1;
		}
	}
	if (found)
		log_info("audit log %s is empty: the chain continues from %s at seq %" PRIu64,
		    path, list[best], top + 1);
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	return 0;
}

int
audit_open(const char *path, struct audit **ap)
{
	struct audit *a = NULL;
	int r = RSSP_E_NOMEM;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto out;
	a->fd = -1;
	a->echo_fd = -1;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		free(a);
		a = NULL;
		goto out;
	}
	if (path == NULL || strcmp(path, "-") == 0) {
		a->fd = STDOUT_FILENO;
		memset(a->prev, '0', 64);
	} else {
		if ((a->path = strdup(path)) == NULL)
			goto out;
		a->own_fd = 1;
		if ((a->fd = open_locked(path, 0)) < 0) {
			r = a->fd;
			goto out;
		}
		if ((r = load_tail(a->fd, &a->seq, a->prev, &a->size)) != 0)
			goto out;
		/* an empty file after a rotation: the chain continues from the newest rotated
		 * file (the engine may have stopped before the new file got its first line) */
		if (a->size == 0 && (r = continue_rotated(path, &a->seq, a->prev)) != 0)
			goto out;
	}
	a->last_ckpt = time(NULL);
	*ap = a;
	a = NULL;
	r = 0;
out:
	audit_free(a);
	return r;
}

void
audit_free(struct audit *a)
{
	if (a == NULL)
		return;
	if (a->own_fd && a->fd >= 0)
		close(a->fd);
	free(a->path);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void
audit_set_sealer(struct audit *a, audit_seal_fn fn, void *arg, const char key_sha256[65],
    unsigned lines, unsigned seconds, int echo_fd)
{
	a->seal = fn;
	a->seal_arg = arg;
	memcpy(a->key_sha256, key_sha256, 64);
	a->key_sha256[64] = '\0';
	a->ckpt_lines = lines != 0 ? lines : 1000;
	a->ckpt_seconds = seconds != 0 ? seconds : 60;
	a->echo_fd = a->own_fd ? echo_fd : -1;
}

void
audit_set_rotate_bytes(struct audit *a, unsigned long long max_bytes)
{
	a->rotate_bytes = max_bytes;
}

static int
write_all(int fd, const char *p, size_t len)
{
	size_t off;
	ssize_t n;

	for (off = 0; off < len; off += (size_t)n) {
		n = write(fd, p + off, len - off);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return -1;
		}
	}
	return 0;
}

/* Appends line (len bytes and the newline at line[len]) as a whole or not at all, and
 * moves the chain on. Called with the lock held. */
static int reopen_locked(struct audit *a);

static int
emit_locked(struct audit *a, const char *line, size_t len)
{
	if (a->own_fd && a->fd < 0 && reopen_locked(a) != 0)
		return RSSP_E_IO;
	if (a->own_fd && a->torn) {
		if (ftruncate(a->fd, a->size) != 0) {
			log_error("cannot cut the audit log back to its last whole line: %s",
			    strerror(errno));
			return RSSP_E_IO;
		}
		a->torn = 0;
	}
	if (write_all(a->fd, line, len + 1) != 0) {
		log_error("cannot write the audit log: %s", strerror(errno));
		if (a->own_fd) {
			/* never leave a partial line: cut back now, or before the next write */
			if (ftruncate(a->fd, a->size) != 0)
				a->torn = 1;
		}
		return RSSP_E_IO;
	}
	a->size += (off_t)len + 1;
	a->seq++;
	hex_sha256(line, len, a->prev);
	return 0;
}

static void
be64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 7; i >= 0; i--) {
		p[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static int
unhex(const char *h, size_t n, uint8_t *out)
{
	size_t i;
	int hi, lo;

	for (i = 0; i < n; i++) {
		hi = h[2 * i] >= 'a' ? h[2 * i] - 'a' + 10 : h[2 * i] - '0';
		lo = h[2 * i + 1] >= 'a' ? h[2 * i + 1] - 'a' + 10 : h[2 * i + 1] - '0';
		if (hi < 0 || hi > 15 || lo < 0 || lo > 15)
			return -1;
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

/* "rssp-audit-checkpoint-v1" || seq (8, BE) || prev (32 raw bytes) */
#define CKPT_DOMAIN "rssp-audit-checkpoint-v1"
#define CKPT_MSG_LEN (sizeof(CKPT_DOMAIN) - 1 + 8 + 32)
static int
ckpt_msg(uint64_t seq, const char prevhex[64], uint8_t msg[CKPT_MSG_LEN])
{
	memcpy(msg, CKPT_DOMAIN, sizeof(CKPT_DOMAIN) - 1);
	be64(msg + sizeof(CKPT_DOMAIN) - 1, seq);
	return unhex(prevhex, 32, msg + sizeof(CKPT_DOMAIN) - 1 + 8);
}

/* {"time":"YYYY-MM-DDTHH:MM:SS.mmmZ","seq":N into head; returns its length or 0. */
static size_t
line_head(char *head, size_t cap, uint64_t seq)
{
	struct timespec now;
	struct tm tm;
	size_t hlen;
	int hn;

	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	hlen = strftime(head, cap, "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
	hn = hlen == 0 ? -1 : snprintf(head + hlen, cap - hlen, ".%03ldZ\",\"seq\":%" PRIu64,
	    now.tv_nsec / 1000000L, seq);
	if (hn < 0 || (size_t)hn >= cap - hlen)
		return 0;
	return hlen + (size_t)hn;
}

/* Writes a checkpoint line. Called with the lock held. */
static int
checkpoint_locked(struct audit *a)
{
	uint8_t msg[CKPT_MSG_LEN], sig[AUDIT_MAX_SIG];
	char line[1024];
	size_t siglen = sizeof(sig), len;
	int r, n;

	if (a->seal == NULL)
		return RSSP_E_UNSUPPORTED;
	if (ckpt_msg(a->seq + 1, a->prev, msg) != 0)
		return RSSP_E_INTERNAL;
	if ((r = a->seal(a->seal_arg, msg, sizeof(msg), sig, &siglen)) != 0) {
		log_error("cannot seal an audit checkpoint: %s", rssp_strerror(r));
		return r;
	}
	if (siglen > sizeof(sig) || (len = line_head(line, sizeof(line), a->seq + 1)) == 0)
		return RSSP_E_INTERNAL;
	n = snprintf(line + len, sizeof(line) - len,
	    ",\"event\":\"" AUDIT_CHECKPOINT "\",\"key_sha256\":\"%s\",\"sig\":\"", a->key_sha256);
	if (n < 0 || (size_t)n >= sizeof(line) - len)
		return RSSP_E_INTERNAL;
	len += (size_t)n;
	if (len + 2 * siglen + 80 > sizeof(line))
		return RSSP_E_INTERNAL;
	rssp_hex(line + len, sig, siglen);
	len += 2 * siglen;
	memcpy(line + len, "\",\"prev\":\"", 10);
	len += 10;
	memcpy(line + len, a->prev, 64);
	len += 64;
	memcpy(line + len, "\"}\n", 3);
	len += 2;
	if ((r = emit_locked(a, line, len)) != 0)
		return r;
	a->since_ckpt = 0;
	a->last_ckpt = time(NULL);
	if (a->echo_fd >= 0 && write_all(a->echo_fd, line, len + 1) != 0)
		log_warn("cannot echo the audit checkpoint to the log pipeline");
	return 0;
}

/* Opens the log's path again (after a rotation, or to recover from a failed one). The
 * file must be empty or end with the chain's last line (e.g. the old file moved back).
 * Called with the lock held, a->fd < 0. */
static int
reopen_locked(struct audit *a)
{
	uint64_t seq;
	char prev[65];
	off_t size;
	int fd, r;

	if ((fd = open_locked(a->path, a->reopen_failed)) < 0)
		goto fail;
	if ((r = load_tail(fd, &seq, prev, &size)) != 0 ||
	    (size > 0 && (seq != a->seq || strcmp(prev, a->prev) != 0))) {
		if (!a->reopen_failed)
			log_error("audit log %s holds lines of another chain: not appending", a->path);
		close(fd);
		goto fail;
	}
	a->fd = fd;
	a->size = size;
	a->torn = 0;
	if (a->reopen_failed)
		log_info("audit log %s writable again, chain continues at seq %" PRIu64, a->path,
		    a->seq + 1);
	a->reopen_failed = 0;
	return 0;
fail:
	if (!a->reopen_failed)
		log_error("audit log %s cannot be opened: refusing every call until it can",
		    a->path);
	a->reopen_failed = 1;
	return RSSP_E_IO;
}

static int
rotate_locked(struct audit *a)
{
	struct stat st_fd, st_path;
	char *to = NULL;
	size_t tolen;
	int r = RSSP_E_IO, moved;

	if (!a->own_fd)
		return 0;
	if (a->fd < 0)
		return reopen_locked(a);
	if (a->seal != NULL && a->since_ckpt > 0 && (r = checkpoint_locked(a)) != 0)
		return r;
	r = RSSP_E_IO;
	if (fstat(a->fd, &st_fd) != 0)
		goto out;
	moved = stat(a->path, &st_path) != 0 || st_path.st_ino != st_fd.st_ino ||
	    st_path.st_dev != st_fd.st_dev;
	if (!moved) {
		tolen = strlen(a->path) + 32;
		if ((to = malloc(tolen)) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		snprintf(to, tolen, "%s.%020" PRIu64, a->path, a->seq);
		errno = 0;
		if (access(to, F_OK) == 0 || rename(a->path, to) != 0) {
			/* the file stays where it is: keep writing it */
			log_error("cannot rotate the audit log to %s: %s", to,
			    errno != 0 && errno != ENOENT ? strerror(errno) : "exists");
			goto out;
		}
	}
	/* The old file is sealed and out of the way: from now on only the path is written.
	 * If it cannot be opened, calls are refused until it can (each call and each SIGHUP
	 * try again). */
	close(a->fd);
	a->fd = -1;
	if ((r = reopen_locked(a)) != 0)
		goto out;
	log_info("audit log rotated%s%s, chain continues at seq %" PRIu64,
	    to != NULL ? " to " : " (moved by the operator)", to != NULL ? to : "", a->seq + 1);
	r = 0;
out:
	free(to);
	return r;
}

int
audit_checkpoint(struct audit *a)
{
	int r;

	pthread_mutex_lock(&a->lock);
	r = checkpoint_locked(a);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int
audit_tick(struct audit *a)
{
	int r = 0;

	pthread_mutex_lock(&a->lock);
	if (a->seal != NULL && a->since_ckpt > 0 &&
	    time(NULL) - a->last_ckpt >= (time_t)a->ckpt_seconds)
		r = checkpoint_locked(a);
	pthread_mutex_unlock(&a->lock);
	return r;
}

int
audit_rotate(struct audit *a)
{
	int r;

	pthread_mutex_lock(&a->lock);
	r = rotate_locked(a);
	pthread_mutex_unlock(&a->lock);
	return r;
}

/* Room before the body for {"time":"YYYY-MM-DDTHH:MM:SS.mmmZ","seq":<uint64>. */
#define AUDIT_HEAD_ROOM 96

int
audit_write(struct audit *a, const struct audit_record *rec)
{
	static const struct sam_audit none;
	const struct sam_audit *s = rec->sam != NULL ? rec->sam : &none;
	struct sbuf *b = NULL;
	char head[AUDIT_HEAD_ROOM], *line;
	size_t body, hlen, len;
	int r = RSSP_E_NOMEM;

	if ((b = malloc(sizeof(*b))) == NULL)
		goto out;
	/* Everything between seq and prev does not depend on the chain: built before the
	 * lock is taken, so that concurrent calls format in parallel. */
	b->len = AUDIT_HEAD_ROOM;
	b->overflow = 0;
	sb_str(b, "event", rec->event, 64);
	sb_str(b, "request_id", rec->request_id, RSSP_MAX_ID_LEN);
	sb_int(b, "peer_uid", rec->peer_uid);
	sb_str(b, "method", rec->method, 128);
	sb_str(b, "credential_id", s->credential_id, RSSP_MAX_ID_LEN);
	sb_str(b, "approval_id", s->approval_id, RSSP_MAX_ID_LEN);
	sb_str(b, "key_label", s->key_label, RSSP_MAX_ID_LEN);
	sb_str(b, "kak_sha256", s->kak_sha256, 64);
	sb_str(b, "ra_key_id", s->ra_key_id, 64);
	sb_str(b, "sad_id", s->sad_id, 32);
	sb_int(b, "sad_expires_at", s->sad_expires_at);
	sb_str(b, "approval_key", s->approval_key, 64);
	sb_int(b, "n_hashes", s->n_hashes);
	sb_str(b, "hashes_sha256", s->hashes_sha256, 64);
	sb_str(b, "algo", s->algo, 64);
	sb_int(b, "signatures", s->signatures);
	sb_str(b, "result", rec->result, 16);
	sb_str(b, "reason", rec->reason, 200);
	body = b->len;
	pthread_mutex_lock(&a->lock);
	if ((hlen = line_head(head, sizeof(head), a->seq + 1)) == 0) {
		r = RSSP_E_INTERNAL;
		goto unlock;
	}
	line = b->buf + AUDIT_HEAD_ROOM - hlen;
	memcpy(line, head, hlen);
	b->len = body;
	sb_raw(b, ",\"prev\":\"", 9);
	sb_raw(b, a->prev, 64);
	sb_raw(b, "\"}", 2);
	if (b->overflow || b->len + 1 >= sizeof(b->buf)) {
		r = RSSP_E_INTERNAL;
		goto unlock;
	}
	b->buf[b->len] = '\n';
	len = b->len - (AUDIT_HEAD_ROOM - hlen); /* without the newline */
	if ((r = emit_locked(a, line, len)) != 0)
		goto unlock;
	a->since_ckpt++;
	/* The line is written: a checkpoint or rotation that fails now is logged, the
	 * decision stands (the next line will tell whether the log can be written). */
	if (a->seal != NULL && a->since_ckpt >= a->ckpt_lines && checkpoint_locked(a) != 0)
		log_error("cannot write an audit checkpoint");
	if (a->rotate_bytes != 0 && (unsigned long long)a->size >= a->rotate_bytes &&
	    rotate_locked(a) != 0)
		log_error("cannot rotate the audit log");
	r = 0;
unlock:
	pthread_mutex_unlock(&a->lock);
out:
	free(b);
	return r;
}

/* ---- reading lines back ---- */

/* The string value of ,"name":" in line (peers' strings have every quote escaped, so
 * the pattern cannot start inside one). Copies at most cap-1 bytes; "" when absent. */
static void
field_str(const char *line, const char *name, char *out, size_t cap)
{
	char pat[48];
	const char *p, *e;
	size_t n;

	out[0] = '\0';
	snprintf(pat, sizeof(pat), ",\"%s\":\"", name);
	if ((p = strstr(line, pat)) == NULL)
		return;
	p += strlen(pat);
	if ((e = strchr(p, '"')) == NULL)
		return;
	n = (size_t)(e - p);
	if (n >= cap)
		n = cap - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

static long long
field_int(const char *line, const char *name)
{
	char pat[48];
	const char *p;

	snprintf(pat, sizeof(pat), ",\"%s\":", name);
	if ((p = strstr(line, pat)) == NULL)
		return 0;
	return strtoll(p + strlen(pat), NULL, 10);
}

static long long
line_time(const char *line)
{
	struct tm tm;
	const char *p;

	memset(&tm, 0, sizeof(tm));
	if (strncmp(line, "{\"time\":\"", 9) != 0)
		return -1;
	p = strptime(line + 9, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL)
		return -1;
	return (long long)timegm(&tm);
}

/* Rotated files of path: regular files named PATH.<anything> in its directory that begin
 * like an audit line (the engine's PATH.<20 digits>, logrotate's PATH.1, an operator's
 * PATH.moved; not compressed ones), each inode once and not path's own, most recently
 * modified first. *mtimesp (may be NULL) gets their modification times. */
static int
rotated_files(const char *path, char ***listp, size_t *np, time_t **mtimes_out)
{
	char *dcopy = NULL, *bcopy = NULL, *dir, *base, **list = NULL, **nl, head[9];
	DIR *d = NULL;
	struct dirent *de;
	struct stat st, self;
	time_t *mt = NULL, *nm;
	ino_t *ino = NULL, *ni;
	size_t n = 0, cap = 0, blen, i, j;
	int r = RSSP_E_NOMEM, fd, have_self;

	have_self = stat(path, &self) == 0;
	if ((dcopy = strdup(path)) == NULL || (bcopy = strdup(path)) == NULL)
		goto out;
	dir = dirname(dcopy);
	base = basename(bcopy);
	blen = strlen(base);
	if ((d = opendir(dir)) == NULL) {
		r = 0;
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		const char *nmn = de->d_name;
		char *full;

		if (strncmp(nmn, base, blen) != 0 || nmn[blen] != '.' || nmn[blen + 1] == '\0')
			continue;
		if ((full = malloc(strlen(dir) + strlen(nmn) + 2)) == NULL)
			goto out;
		sprintf(full, "%s/%s", dir, nmn);
		fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
		    (have_self && st.st_ino == self.st_ino && st.st_dev == self.st_dev) ||
		    pread(fd, head, sizeof(head), 0) != (ssize_t)sizeof(head) ||
		    memcmp(head, "{\"time\":\"", sizeof(head)) != 0) {
			if (fd >= 0)
				close(fd);
			free(full);
			continue;
		}
		close(fd);
		for (j = 0; j < n && ino[j] != st.st_ino; j++)
			;
		if (j < n) { /* a second name of a file already listed */
			free(full);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nl = realloc(list, cap * sizeof(*list))) == NULL) {
				free(full);
				goto out;
			}
			list = nl;
			if ((nm = realloc(mt, cap * sizeof(*mt))) == NULL) {
				free(full);
				goto out;
			}
			mt = nm;
			if ((ni = realloc(ino, cap * sizeof(*ino))) == NULL) {
				free(full);
				goto out;
			}
			ino = ni;
		}
		list[n] = full;
		mt[n] = st.st_mtime;
		ino[n] = st.st_ino;
		n++;
	}
	/* most recently modified first */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && mt[j - 1] < mt[j]; j--) {
			char *t = list[j];
			time_t tm = mt[j];
			list[j] = list[j - 1];
			list[j - 1] = t;
			mt[j] = mt[j - 1];
			mt[j - 1] = tm;
		}
	*listp = list;
	*np = n;
	if (mtimes_out != NULL) {
		*mtimes_out = mt;
		mt = NULL;
	}
	list = NULL;
	n = 0;
	r = 0;
out:
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	free(mt);
	free(ino);
	if (d != NULL)
		closedir(d);
	free(dcopy);
	free(bcopy);
	return r;
}

/* Calls fn for the lines of one file at or after since; *oldestp gets the time of its
 * first line (or LLONG_MAX when it has none). */
static int
scan_file(const char *path, long long since, void (*fn)(void *, const struct audit_entry *),
    void *arg, long long *oldestp)
{
	FILE *f;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	struct audit_entry e;
	int first = 1;

	*oldestp = LLONG_MAX;
	if ((f = fopen(path, "re")) == NULL)
		return errno == ENOENT ? 0 : RSSP_E_IO;
	while ((len = getline(&line, &cap, f)) > 0) {
		if (line[len - 1] != '\n')
			break;
		line[len - 1] = '\0';
		memset(&e, 0, sizeof(e));
		e.time = line_time(line);
		if (first) {
			*oldestp = e.time;
			first = 0;
		}
		if (e.time < since)
			continue;
		field_str(line, "event", e.event, sizeof(e.event));
		field_str(line, "result", e.result, sizeof(e.result));
		field_str(line, "sad_id", e.sad_id, sizeof(e.sad_id));
		field_str(line, "approval_key", e.approval_key, sizeof(e.approval_key));
		e.sad_expires_at = field_int(line, "sad_expires_at");
		e.signatures = (unsigned long long)field_int(line, "signatures");
		fn(arg, &e);
	}
	free(line);
	fclose(f);
	return 0;
}

int
audit_scan(const char *path, long long since, void (*fn)(void *arg, const struct audit_entry *e),
    void *arg)
{
	char **list = NULL;
	time_t *mt = NULL;
	size_t n = 0, i;
	long long oldest;
	int r;

	if ((r = scan_file(path, since, fn, arg, &oldest)) != 0)
		return r;
	if ((r = rotated_files(path, &list, &n, &mt)) != 0)
		return r;
	/* a file last written before since holds no line after it */
	for (i = 0; i < n && r == 0 && (long long)mt[i] >= since; i++)
		r = scan_file(list[i], since, fn, arg, &oldest);
	for (i = 0; i < n; i++)
		free(list[i]);
	free(list);
	free(mt);
	return r;
}

/* ---- verification ---- */

struct vline {
	uint64_t seq;
	char prev[65];
	char hash[65];
	size_t file, lineno;
	int ok;
	int ckpt;
};

static EVP_PKEY *
load_key(const char *pem, char key_sha256[65])
{
	FILE *f;
	EVP_PKEY *k;
	unsigned char *der = NULL;
	int n;

	if ((f = fopen(pem, "re")) == NULL)
		return NULL;
	k = PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (k == NULL || (n = i2d_PUBKEY(k, &der)) <= 0) {
		EVP_PKEY_free(k);
		return NULL;
	}
	hex_sha256((const char *)der, (size_t)n, key_sha256);
	OPENSSL_free(der);
	return k;
}

/* Checks a checkpoint line's key and signature. Returns NULL or what is wrong. */
static const char *
check_ckpt(const char *line, uint64_t seq, const char *prev, EVP_PKEY *key,
    const char *key_sha256)
{
	char ks[65], sighex[2 * AUDIT_MAX_SIG + 2];
	uint8_t msg[CKPT_MSG_LEN], sig[AUDIT_MAX_SIG];
	EVP_MD_CTX *m;
	size_t sl;
	int ok;

	if (key == NULL)
		return "a checkpoint, and no audit key to check it (--key)";
	field_str(line, "key_sha256", ks, sizeof(ks));
	if (strcmp(ks, key_sha256) != 0)
		return "checkpoint made with another key";
	field_str(line, "sig", sighex, sizeof(sighex));
	sl = strlen(sighex);
	if (sl == 0 || sl % 2 != 0 || sl / 2 > sizeof(sig) || unhex(sighex, sl / 2, sig) != 0 ||
	    ckpt_msg(seq, prev, msg) != 0)
		return "checkpoint malformed";
	if ((m = EVP_MD_CTX_new()) == NULL)
		return "out of memory";
	ok = EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, key) == 1 &&
	    EVP_DigestVerify(m, sig, sl / 2, msg, sizeof(msg)) == 1;
	EVP_MD_CTX_free(m);
	return ok ? NULL : "checkpoint signature invalid: the chain before it was rewritten";
}

/* A checkpoint line: its event, right after seq, is audit.checkpoint. */
static int
is_ckpt_line(const char *line)
{
	static const char ev[] = ",\"event\":\"" AUDIT_CHECKPOINT "\",\"key_sha256\":\"";
	const char *p = strstr(line, ",\"seq\":");

	if (p == NULL)
		return 0;
	p += 7;
	while (*p >= '0' && *p <= '9')
		p++;
	return strncmp(p, ev, sizeof(ev) - 1) == 0;
}

int
audit_verify_files(const char *const *paths, size_t npaths, const struct audit_verify_opts *o,
    FILE *out, struct audit_verify_result *res)
{
	static const struct audit_verify_opts none;
	FILE *f = NULL;
	struct vline *v = NULL, *nv;
	size_t n = 0, cap = 0, i, j, fi, lineno;
	char *line = NULL, *kp = NULL, key_sha256[65] = "";
	size_t linecap = 0;
	ssize_t len;
	char zeros[65];
	EVP_PKEY *key = NULL;
	const char *bad, *kpath;
	int r = RSSP_E_IO;

	if (o == NULL)
		o = &none;
	memset(res, 0, sizeof(*res));
	memset(zeros, '0', 64);
	zeros[64] = '\0';
	kpath = o->key_pem;
	if (kpath == NULL && npaths > 0) {
		char *c = strdup(paths[0]);
		if (c == NULL)
			return RSSP_E_NOMEM;
		if ((kp = malloc(strlen(paths[0]) + 20)) != NULL) {
			sprintf(kp, "%s/audit-key.pem", dirname(c));
			if (access(kp, R_OK) == 0)
				kpath = kp;
		}
		free(c);
	}
	if (kpath != NULL && (key = load_key(kpath, key_sha256)) == NULL) {
		fprintf(out, "cannot read the audit key %s\n", kpath);
		goto out;
	}
	for (fi = 0; fi < npaths; fi++) {
		if ((f = fopen(paths[fi], "re")) == NULL) {
			fprintf(out, "cannot open %s: %s\n", paths[fi], strerror(errno));
			goto out;
		}
		lineno = 0;
		while ((len = getline(&line, &linecap, f)) > 0) {
			lineno++;
			if (n == cap) {
				cap = cap ? cap * 2 : 1024;
				if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
					r = RSSP_E_NOMEM;
					goto out;
				}
				v = nv;
			}
			if (line[len - 1] == '\n')
				line[--len] = '\0';
			else {
				fprintf(out, "%s%sline %zu: incomplete (no newline): torn or truncated\n",
				    npaths > 1 ? paths[fi] : "", npaths > 1 ? ": " : "", lineno);
				r = RSSP_E_DENIED;
				goto out;
			}
			v[n].file = fi;
			v[n].lineno = lineno;
			v[n].ok = parse_line(line, (size_t)len, &v[n].seq, v[n].prev) == 0;
			v[n].ckpt = v[n].ok && is_ckpt_line(line);
			hex_sha256(line, (size_t)len, v[n].hash);
			if (v[n].ckpt && key != NULL && (bad = check_ckpt(line, v[n].seq, v[n].prev, key,
			    key_sha256)) != NULL) {
				fprintf(out, "%s%sline %zu: %s\n", npaths > 1 ? paths[fi] : "",
				    npaths > 1 ? ": " : "", lineno, bad);
				r = RSSP_E_DENIED;
				goto out;
			}
			n++;
		}
		if (ferror(f)) {
			fprintf(out, "cannot read %s\n", paths[fi]);
			goto out;
		}
		fclose(f);
		f = NULL;
	}
	r = RSSP_E_DENIED;
#define AT(k) npaths > 1 ? paths[v[k].file] : "", npaths > 1 ? ": " : "", v[k].lineno
	for (i = 0; i < n; i++) {
		uint64_t expect;
		const char *want;

		if (!v[i].ok) {
			fprintf(out, "%s%sline %zu: not an audit line: edited\n", AT(i));
			goto out;
		}
		if (i == 0 && o->partial) {
			expect = v[0].seq;
			want = v[0].prev;
		} else if (i == 0 && v[0].seq != 1) {
			fprintf(out, "%s%sline 1: seq %" PRIu64 ", expected 1: lines or files "
			    "before it are missing (give them all, or --partial)\n",
			    npaths > 1 ? paths[0] : "", npaths > 1 ? ": " : "", v[0].seq);
			goto out;
		} else {
			expect = i == 0 ? 1 : v[i - 1].seq + 1;
			want = i == 0 ? zeros : v[i - 1].hash;
		}
		if (strcmp(v[i].prev, want) == 0) {
			if (v[i].seq != expect) {
				fprintf(out, "%s%sline %zu: seq %" PRIu64 ", expected %" PRIu64
				    ": edited\n", AT(i), v[i].seq, expect);
				goto out;
			}
			continue;
		}
		if (v[i].seq == expect) {
			if (i == 0)
				fprintf(out, "%s%sline 1: prev is not zeros: edited, or an older file "
				    "is missing (--partial)\n", npaths > 1 ? paths[0] : "",
				    npaths > 1 ? ": " : "");
			else
				fprintf(out, "%s%sline %zu: edited (%s%sline %zu's prev does not "
				    "match it)\n", AT(i - 1), v[i].file == v[i - 1].file ? "" :
				    paths[v[i].file], v[i].file == v[i - 1].file ? "" : " ", v[i].lineno);
			goto out;
		}
		if (v[i].seq < expect) {
			fprintf(out, "%s%sline %zu: seq %" PRIu64 " after seq %" PRIu64
			    ": lines reordered\n", AT(i), v[i].seq, expect - 1);
			goto out;
		}
		for (j = i + 1; j < n; j++)
			if (v[j].ok && v[j].seq == expect)
				break;
		if (j < n)
			fprintf(out, "%s%sline %zu: seq %" PRIu64 " comes before seq %" PRIu64
			    " (%s%sline %zu): lines reordered\n", AT(i), v[i].seq, expect,
			    v[j].file == v[i].file ? "" : paths[v[j].file],
			    v[j].file == v[i].file ? "" : " ", v[j].lineno);
		else
			fprintf(out, "%s%sline %zu: seq %" PRIu64 ", expected %" PRIu64
			    ": line(s) deleted before it\n", AT(i), v[i].seq, expect);
		goto out;
	}
	for (i = 0; i < n; i++)
		if (v[i].ckpt) {
			res->checkpoints++;
			if (key != NULL)
				res->sealed_seq = v[i].seq;
		}
	res->unchecked = key == NULL;
	/* Anchors: retained checkpoint lines (e.g. from the log pipeline) must each verify
	 * and be the log's line of the same seq, byte for byte. */
	if (o->anchor != NULL) {
		uint64_t aseq;
		char aprev[65], ahash[65];

		if (key == NULL) {
			fprintf(out, "anchors need the audit key (--key)\n");
			r = RSSP_E_IO;
			goto out;
		}
		if ((f = fopen(o->anchor, "re")) == NULL) {
			fprintf(out, "cannot open %s: %s\n", o->anchor, strerror(errno));
			r = RSSP_E_IO;
			goto out;
		}
		lineno = 0;
		while ((len = getline(&line, &linecap, f)) > 0) {
			lineno++;
			if (line[len - 1] == '\n')
				line[--len] = '\0';
			if (len == 0)
				continue;
			if (parse_line(line, (size_t)len, &aseq, aprev) != 0 || !is_ckpt_line(line)) {
				fprintf(out, "%s: line %zu: not a checkpoint line\n", o->anchor, lineno);
				goto out;
			}
			if ((bad = check_ckpt(line, aseq, aprev, key, key_sha256)) != NULL) {
				fprintf(out, "%s: line %zu: %s\n", o->anchor, lineno, bad);
				goto out;
			}
			hex_sha256(line, (size_t)len, ahash);
			if (n == 0 || aseq > v[n - 1].seq) {
				fprintf(out, "truncated: the checkpoint at seq %" PRIu64 " (%s line %zu) "
				    "is beyond the end of the log (seq %" PRIu64 ")\n", aseq, o->anchor,
				    lineno, n > 0 ? v[n - 1].seq : 0);
				goto out;
			}
			if (aseq < v[0].seq) {
				fprintf(out, "the checkpoint at seq %" PRIu64 " (%s line %zu) is before "
				    "the first file\n", aseq, o->anchor, lineno);
				goto out;
			}
			i = (size_t)(aseq - v[0].seq);
			if (v[i].seq != aseq || strcmp(v[i].hash, ahash) != 0) {
				fprintf(out, "the checkpoint at seq %" PRIu64 " (%s line %zu) differs from "
				    "the log's line of that seq: the log was rewritten\n", aseq,
				    o->anchor, lineno);
				goto out;
			}
		}
		fclose(f);
		f = NULL;
	}
#undef AT
	res->lines = n;
	res->last_seq = n > 0 ? v[n - 1].seq : 0;
	memcpy(res->head, n > 0 ? v[n - 1].hash : zeros, 65);
	r = 0;
out:
	EVP_PKEY_free(key);
	free(kp);
	free(line);
	free(v);
	if (f != NULL)
		fclose(f);
	return r;
}

int
audit_verify(const char *path, FILE *out, size_t *nlinesp, char headhex[65])
{
	struct audit_verify_result res;
	int r;

	if ((r = audit_verify_files(&path, 1, NULL, out, &res)) != 0)
		return r;
	*nlinesp = res.lines;
	memcpy(headhex, res.head, 65);
	return 0;
}

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

#include <openssl/sha.h>

#include "buf.h"
#include "rssp_log.h"

#define AUDIT_MAX_LINE 8192
#define AUDIT_TAIL 65536

struct audit {
	pthread_mutex_t lock;
	int fd;
	int own_fd;
	uint64_t seq;            /* seq of the last line written */
	char prev[65];           /* hex SHA-256 of the last line written */
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

/* Reads the last line of an existing log to continue its chain. */
static int
load_tail(int fd, uint64_t *seqp, char prev[65])
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
	if (size == 0) {
		*seqp = 0;
		memset(prev, '0', 64);
		prev[64] = '\0';
		r = 0;
		goto out;
	}
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
	r = RSSP_E_INVAL;
	if (buf[got - 1] != '\n') {
		log_error("audit log does not end with a complete line");
		goto out;
	}
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

int
audit_open(const char *path, struct audit **ap)
{
	struct audit *a = NULL;
	int r = RSSP_E_NOMEM;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		goto out;
	a->fd = -1;
	if (pthread_mutex_init(&a->lock, NULL) != 0) {
		free(a);
		a = NULL;
		goto out;
	}
	if (path == NULL || strcmp(path, "-") == 0) {
		a->fd = STDOUT_FILENO;
		memset(a->prev, '0', 64);
	} else {
		a->own_fd = 1;
		a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
		if (a->fd < 0) {
			log_error("cannot open audit log %s: %s", path, strerror(errno));
			r = RSSP_E_IO;
			goto out;
		}
		if ((r = load_tail(a->fd, &a->seq, a->prev)) != 0)
			goto out;
	}
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
	pthread_mutex_destroy(&a->lock);
	free(a);
}

/* Room before the body for {"time":"YYYY-MM-DDTHH:MM:SS.mmmZ","seq":<uint64>. */
#define AUDIT_HEAD_ROOM 96

int
audit_write(struct audit *a, const struct audit_record *rec)
{
	static const struct sam_audit none;
	const struct sam_audit *s = rec->sam != NULL ? rec->sam : &none;
	struct sbuf *b = NULL;
	struct timespec now;
	struct tm tm;
	char head[AUDIT_HEAD_ROOM], *line;
	size_t off, body, hlen, len;
	ssize_t n;
	int r = RSSP_E_NOMEM, hn;

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
	sb_str(b, "sad_id", s->sad_id, 32);
	sb_int(b, "n_hashes", s->n_hashes);
	sb_str(b, "hashes_sha256", s->hashes_sha256, 64);
	sb_str(b, "algo", s->algo, 64);
	sb_int(b, "signatures", s->signatures);
	sb_str(b, "result", rec->result, 16);
	sb_str(b, "reason", rec->reason, 200);
	body = b->len;
	pthread_mutex_lock(&a->lock);
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	hlen = strftime(head, sizeof(head), "{\"time\":\"%Y-%m-%dT%H:%M:%S", &tm);
	hn = hlen == 0 ? -1 : snprintf(head + hlen, sizeof(head) - hlen, ".%03ldZ\",\"seq\":%" PRIu64,
	    now.tv_nsec / 1000000L, a->seq + 1);
	if (hn < 0 || (size_t)hn >= sizeof(head) - hlen) {
		r = RSSP_E_INTERNAL;
		goto unlock;
	}
	hlen += (size_t)hn;
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
	for (off = 0; off < len + 1; off += (size_t)n) {
		n = write(a->fd, line + off, len + 1 - off);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n <= 0) {
			log_error("cannot write the audit log: %s", strerror(errno));
			r = RSSP_E_IO;
			goto unlock;
		}
	}
	a->seq++;
	hex_sha256(line, len, a->prev);
	r = 0;
unlock:
	pthread_mutex_unlock(&a->lock);
out:
	free(b);
	return r;
}

struct vline {
	uint64_t seq;
	char prev[65];
	char hash[65];
	int ok;
};

int
audit_verify(const char *path, FILE *out, size_t *nlinesp, char headhex[65])
{
	FILE *f = NULL;
	struct vline *v = NULL, *nv;
	size_t n = 0, cap = 0, i, j;
	char *line = NULL;
	size_t linecap = 0;
	ssize_t len;
	char zeros[65];
	int r = RSSP_E_IO;

	memset(zeros, '0', 64);
	zeros[64] = '\0';
	if ((f = fopen(path, "re")) == NULL) {
		fprintf(out, "cannot open %s: %s\n", path, strerror(errno));
		goto out;
	}
	while ((len = getline(&line, &linecap, f)) > 0) {
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
			fprintf(out, "line %zu: incomplete (no newline): truncated or edited\n", n + 1);
			r = RSSP_E_DENIED;
			goto out;
		}
		v[n].ok = parse_line(line, (size_t)len, &v[n].seq, v[n].prev) == 0;
		hex_sha256(line, (size_t)len, v[n].hash);
		n++;
	}
	if (ferror(f)) {
		fprintf(out, "cannot read %s\n", path);
		goto out;
	}
	r = RSSP_E_DENIED;
	for (i = 0; i < n; i++) {
		uint64_t expect = i == 0 ? 1 : v[i - 1].seq + 1;
		const char *want = i == 0 ? zeros : v[i - 1].hash;

		if (!v[i].ok) {
			fprintf(out, "line %zu: not an audit line: edited\n", i + 1);
			goto out;
		}
		if (i > 0 && !v[i - 1].ok)
			continue;
		if (strcmp(v[i].prev, want) == 0) {
			if (v[i].seq != expect) {
				fprintf(out, "line %zu: seq %" PRIu64 ", expected %" PRIu64
				    ": edited\n", i + 1, v[i].seq, expect);
				goto out;
			}
			continue;
		}
		if (v[i].seq == expect) {
			if (i == 0)
				fprintf(out, "line 1: prev is not zeros: edited\n");
			else
				fprintf(out, "line %zu: edited (line %zu's prev does not match it)\n",
				    i, i + 1);
			goto out;
		}
		if (v[i].seq < expect) {
			fprintf(out, "line %zu: seq %" PRIu64 " after seq %" PRIu64
			    ": lines reordered\n", i + 1, v[i].seq, expect - 1);
			goto out;
		}
		for (j = i + 1; j < n; j++)
			if (v[j].ok && v[j].seq == expect)
				break;
		if (j < n)
			fprintf(out, "line %zu: seq %" PRIu64 " comes before seq %" PRIu64
			    " (line %zu): lines reordered\n", i + 1, v[i].seq, expect, j + 1);
		else
			fprintf(out, "line %zu: seq %" PRIu64 ", expected %" PRIu64
			    ": line(s) deleted before it\n", i + 1, v[i].seq, expect);
		goto out;
	}
	*nlinesp = n;
	memcpy(headhex, n > 0 ? v[n - 1].hash : zeros, 65);
	r = 0;
out:
	free(line);
	free(v);
	if (f != NULL)
		fclose(f);
	return r;
}

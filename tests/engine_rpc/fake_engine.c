/* fake_engine.c - see fake_engine.h. */
#include "fake_engine.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "audit.h"
#include "fixture.h"

void
fe_paths_new(struct fe_paths *p, const char *prefix)
{
	ef_tempdir(p->dir, sizeof(p->dir), prefix);
	snprintf(p->sock, sizeof(p->sock), "%s/run/engine.sock", p->dir);
	snprintf(p->audit, sizeof(p->audit), "%s/audit.log", p->dir);
}

void
fe_paths_free(struct fe_paths *p)
{
	ef_rmtree(p->dir);
}

static void *
run_thread(void *arg)
{
	struct fake_engine *fe = arg;

	fe->rc = rpc_server_run(fe->s, fe->stop[0]);
	return NULL;
}

void
fake_engine_opts(struct rpc_server_opts *o, const struct rpc_method *methods, size_t n_methods,
    unsigned workers)
{
	memset(o, 0, sizeof(*o));
	o->methods = methods;
	o->n_methods = n_methods;
	o->workers = workers;
}

void
fake_engine_start(struct fake_engine *fe, const struct fe_paths *p,
    const struct rpc_server_opts *o, uid_t uid)
{
	struct rpc_server_opts opts = *o;

	memset(fe, 0, sizeof(*fe));
	fe->uid = uid;
	ck_assert_int_eq(audit_open(p->audit, &fe->audit), 0);
	opts.socket_path = p->sock;
	opts.uids = &fe->uid;
	opts.n_uids = 1;
	opts.audit = fe->audit;
	ck_assert_int_eq(rpc_server_new(&opts, &fe->s), 0);
	ck_assert_int_eq(pipe(fe->stop), 0);
	ck_assert_int_eq(pthread_create(&fe->th, NULL, run_thread, fe), 0);
}

void
fake_engine_ask_stop(struct fake_engine *fe)
{
	ck_assert_int_eq(write(fe->stop[1], "x", 1), 1);
}

void
fake_engine_finish(struct fake_engine *fe)
{
	pthread_join(fe->th, NULL);
	ck_assert_int_eq(fe->rc, 0);
	rpc_server_free(fe->s);
	audit_free(fe->audit);
	close(fe->stop[0]);
	close(fe->stop[1]);
}

void
fake_engine_stop(struct fake_engine *fe)
{
	fake_engine_ask_stop(fe);
	fake_engine_finish(fe);
}

void
fe_sockaddr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	ck_assert_uint_lt(strlen(path), sizeof(sa->sun_path));
	memcpy(sa->sun_path, path, strlen(path) + 1);
}

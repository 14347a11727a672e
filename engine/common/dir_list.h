/* dir_list.h - the names in one directory that end in one suffix, sorted. Used by the
 * engine (the RA key directory, *.pem) and the gateway (the schema migrations, *.sql).
 * Thread-safe (no shared state). */
#ifndef RSSP_DIR_LIST_H
#define RSSP_DIR_LIST_H

#include <stddef.h>

#include "rssp_err.h"

/* Lists the entries of directory dir whose name ends in suffix, is longer than suffix
 * and does not start with '.', sorted by strcmp (byte order). Names only: the caller
 * joins them to dir and checks the file type. max caps the count (0: no cap).
 * Returns 0, RSSP_E_IO (dir cannot be opened), RSSP_E_INVAL (a NULL argument, or more
 * than max names) or RSSP_E_NOMEM. On success *namesp is an array of *np malloc'd
 * strings (NULL when *np is 0), owned by the caller: free with dir_list_free(). */
int dir_list(const char *dir, const char *suffix, size_t max, char ***namesp, size_t *np)
    RSSP_WUR;

/* Frees what dir_list() returned; accepts NULL. */
void dir_list_free(char **names, size_t n);

#endif

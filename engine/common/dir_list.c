/* dir_list.c - sorted directory listings by suffix (dir_list.h). */
#include "dir_list.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
dir_list(const char *dir, const char *suffix, size_t max, char ***namesp, size_t *np)
{
	DIR *d;
	struct dirent *de;
	char **names = NULL, **nn;
	size_t n = 0, cap = 0, len, slen;
	int r = 0;

	if (dir == NULL || suffix == NULL || namesp == NULL || np == NULL)
		return RSSP_E_INVAL;
	slen = strlen(suffix);
	if ((d = opendir(dir)) == NULL)
		return RSSP_E_IO;
	while ((de = readdir(d)) != NULL) {
		len = strlen(de->d_name);
		if (len <= slen || de->d_name[0] == '.' ||
		    strcmp(de->d_name + len - slen, suffix) != 0)
			continue;
		if (max != 0 && n >= max) {
			r = RSSP_E_INVAL;
			goto out;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nn = realloc(names, cap * sizeof(*names))) == NULL) {
				r = RSSP_E_NOMEM;
				goto out;
			}
			names = nn;
		}
		if ((names[n] = strdup(de->d_name)) == NULL) {
			r = RSSP_E_NOMEM;
			goto out;
		}
		n++;
	}
	if (n > 0)
		qsort(names, n, sizeof(*names), name_cmp);
	*namesp = names; /* owned by the caller from here */
	*np = n;
	names = NULL;
	n = 0;
out:
	dir_list_free(names, n);
	closedir(d);
	return r;
}

void
dir_list_free(char **names, size_t n)
{
	size_t i;

	if (names == NULL)
		return;
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

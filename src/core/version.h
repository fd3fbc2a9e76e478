/* What `yourouter --version` prints: our version, the commit it was built
 * from, and the versions of the libraries as they report themselves at run
 * time (a distribution upgrade of libcurl shows here without a rebuild). */
#ifndef YR_CORE_VERSION_H
#define YR_CORE_VERSION_H

#include <stdio.h>

/* "0.1.0"; static storage. */
const char *yr_version(void);

/* The git commit the build was configured from (short hash, "-dirty" when
 * the tree had changes), or "unknown" outside git; static storage. */
const char *yr_version_commit(void);

/* Writes the full report, one "name version" line per component, to f.
 * Returns 0, or -EIO when writing failed. */
__attribute__((warn_unused_result)) int yr_version_print(FILE *f);

#endif

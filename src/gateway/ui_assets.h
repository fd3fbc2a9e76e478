/* The admin UI's files (ui/), built into the binary by cmake/ui_embed.cmake:
 * static, read-only, the process's for its whole life. */
#ifndef YR_UI_ASSETS_H
#define YR_UI_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name; /* file name under ui/, e.g. "app.js"; NULL ends the table */
    const char *content_type;
    const unsigned char *data; /* NUL-terminated, for convenience */
    size_t len;
} yr_ui_asset_t;

extern const yr_ui_asset_t yr_ui_assets[];

#endif

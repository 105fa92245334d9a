/* Where keyless keeps its files by default: the one definition of the data-directory
 * rule, shared by keylessd (where it creates the directory) and the CLI (where it looks
 * for the admin socket), so the two cannot drift apart. */
#ifndef KL_COMMON_PATHS_H
#define KL_COMMON_PATHS_H

#include <stdbool.h>
#include <stddef.h>

/* The default data directory: /var/lib/keyless for root, else $XDG_DATA_HOME/keyless
 * when xdg_data_home is an absolute path, else $HOME/.local/share/keyless when home is
 * an absolute path. There is no fallback under /tmp: anyone can create names there
 * first. xdg_data_home and home may be NULL (unset). Writes a NUL-terminated path into
 * out[outlen]. Returns 0; KL_ENOTFOUND when there is no default (not root, no absolute
 * XDG_DATA_HOME or HOME; out is then ""); KL_ETOOBIG when the path does not fit (out is
 * then ""). */
int kl_paths_default_data_dir(bool is_root, const char *xdg_data_home, const char *home, char *out,
                              size_t outlen);

#endif

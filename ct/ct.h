/* ct: LXC containers — config schema, the liblxc driver (liblxc is used only
 * from here, and only in a helper process: it forks from the calling
 * thread), and root filesystems from templates. */
#ifndef CAIRN_CT_H
#define CAIRN_CT_H

/* liblxc's version, for `--version` output. */
const char *ct_lxc_library_version(void);

#endif /* CAIRN_CT_H */

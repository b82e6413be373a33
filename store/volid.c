/* Proxmox volume ids, content types and sizes: what pve-storage's
 * parse_volume_id, parse_volname and parse_name_dir accept, narrowed to
 * names that cannot escape their directory or break a property string. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "store/volid.h"

/* ------------------------------------------------------------ helpers */

/* Hostile text must not reach a log line or an error message as it is:
 * copies at most 80 bytes of s, with anything unprintable as '?'. */
static const char *shown(const char *s, size_t len, char out[96])
{
	size_t i, n = len < 80 ? len : 80;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

/* Parses a decimal number of at most max_digits digits without leading
 * zeros, s[0..len). */
static bool parse_decimal(const char *s, size_t len, size_t max_digits,
                          uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (len == 0 || len > max_digits || (len > 1 && s[0] == '0'))
		return false;
	for (i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return true;
}

static bool parse_vmid(const char *s, size_t len, uint32_t *vmid)
{
	uint64_t v;

	if (!parse_decimal(s, len, 9, &v) || v < STORE_VMID_MIN ||
	    v > STORE_VMID_MAX)
		return false;
	*vmid = (uint32_t)v;
	return true;
}

static bool has_suffix(const char *s, size_t len, const char *suffix,
                       bool any_case)
{
	size_t n = strlen(suffix);

	if (len < n)
		return false;
	return any_case ? strncasecmp(s + len - n, suffix, n) == 0
	                : memcmp(s + len - n, suffix, n) == 0;
}

static bool starts_with(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);

	return len >= n && memcmp(s, prefix, n) == 0;
}

static void copy_text(char *dst, size_t size, const char *src, size_t len)
{
	CAIRN_ASSERT(len < size);
	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* ------------------------------------------------------------ ids */

int store_id_check(const char *id, struct err *e)
{
	char show[96];
	size_t len = strlen(id), i;

	if (len < 2)
		return err_set(e, -EINVAL,
		               "storage id '%s': at least 2 characters",
		               shown(id, len, show));
	if (len > STORE_ID_MAX)
		return err_set(e, -EINVAL,
		               "storage id '%s': longer than %d characters",
		               shown(id, len, show), STORE_ID_MAX);
	if (!isalpha((unsigned char)id[0]) || !isascii((unsigned char)id[0]))
		return err_set(e, -EINVAL,
		               "storage id '%s': must start with a letter",
		               shown(id, len, show));
	for (i = 1; i < len; i++) {
		unsigned char c = (unsigned char)id[i];

		if (!isascii(c) ||
		    !(isalnum(c) || c == '-' || c == '_' || c == '.'))
			return err_set(e, -EINVAL,
			               "storage id '%s': character %zu is not "
			               "a letter, digit, '-', '_' or '.'",
			               shown(id, len, show), i + 1);
	}
	if (!isalnum((unsigned char)id[len - 1]))
		return err_set(e, -EINVAL,
		               "storage id '%s': must end with a letter or "
		               "digit",
		               shown(id, len, show));
	return 0;
}

int store_snap_name_check(const char *name, struct err *e)
{
	char show[96];
	size_t len = strlen(name), i;

	if (len == 0)
		return err_set(e, -EINVAL, "empty snapshot name");
	if (len > STORE_SNAP_MAX)
		return err_set(e, -EINVAL,
		               "snapshot name '%s': longer than %d characters",
		               shown(name, len, show), STORE_SNAP_MAX);
	if (!isascii((unsigned char)name[0]) ||
	    !isalpha((unsigned char)name[0]))
		return err_set(e, -EINVAL,
		               "snapshot name '%s': must start with a letter",
		               shown(name, len, show));
	for (i = 1; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isascii(c) || !(isalnum(c) || c == '-' || c == '_'))
			return err_set(e, -EINVAL,
			               "snapshot name '%s': character %zu is "
			               "not a letter, digit, '-' or '_'",
			               shown(name, len, show), i + 1);
	}
	return 0;
}

/* ------------------------------------------------------------ content */

/* In the order Proxmox's API shows them (alphabetical). */
static const struct {
	enum store_content content;
	const char *name;
} contents[] = {
        {STORE_CT_BACKUP, "backup"},   {STORE_CT_IMAGES, "images"},
        {STORE_CT_IMPORT, "import"},   {STORE_CT_ISO, "iso"},
        {STORE_CT_ROOTDIR, "rootdir"}, {STORE_CT_SNIPPETS, "snippets"},
        {STORE_CT_VZTMPL, "vztmpl"},
};

const char *store_content_name(enum store_content content)
{
	size_t i;

	for (i = 0; i < CAIRN_ARRAY_SIZE(contents); i++) {
		if (contents[i].content == content)
			return contents[i].name;
	}
	return "";
}

int store_content_parse(const char *list, unsigned *mask, struct err *e)
{
	const char *p = list;
	unsigned result = 0;
	char show[96];

	if (strcmp(list, "none") == 0) {
		*mask = 0;
		return 0;
	}
	while (*p != '\0') {
		size_t n, i;

		if (*p == ',' || *p == ';' || *p == ' ') {
			p++;
			continue;
		}
		n = strcspn(p, ",; ");
		for (i = 0; i < CAIRN_ARRAY_SIZE(contents); i++) {
			if (strlen(contents[i].name) == n &&
			    memcmp(contents[i].name, p, n) == 0)
				break;
		}
		if (i == CAIRN_ARRAY_SIZE(contents))
			return err_set(e, -EINVAL,
			               "unknown content type '%s' (known: "
			               "backup, images, import, iso, rootdir, "
			               "snippets, vztmpl)",
			               shown(p, n, show));
		result |= (unsigned)contents[i].content;
		p += n;
	}
	*mask = result;
	return 0;
}

void store_content_format(unsigned mask, char *out, size_t size)
{
	size_t i, used = 0;

	if (size == 0)
		return;
	out[0] = '\0';
	for (i = 0; i < CAIRN_ARRAY_SIZE(contents); i++) {
		int n;

		if (!(mask & (unsigned)contents[i].content))
			continue;
		n = snprintf(out + used, size - used, "%s%s",
		             used > 0 ? "," : "", contents[i].name);
		if (n < 0 || (size_t)n >= size - used)
			return; /* truncated, NUL-terminated by snprintf */
		used += (size_t)n;
	}
}

/* ------------------------------------------------------------ volids */

/* Checks that hold for every byte of a volume name; the first problem
 * found is reported. */
static int check_chars(const char *text, size_t len, struct err *e)
{
	char show[96];
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		const char *what = NULL;

		if (c == '\0')
			what = "a NUL byte";
		else if (c < 0x20 || c == 0x7f)
			what = "a control character";
		else if (c >= 0x80)
			what = "a non-ASCII byte";
		else if (c == ' ')
			what = "whitespace";
		else if (c == '\\')
			what = "'\\'";
		else if (c == ',' || c == '=' || c == '"' || c == '\'')
			what = c == ',' ? "','" : c == '=' ? "'='" : "a quote";
		if (what != NULL)
			return err_set(e, -EINVAL,
			               "bad volume id '%s': %s at byte %zu",
			               shown(text, len, show), what, i + 1);
	}
	return 0;
}

/* A file name inside a content directory: 1..255 bytes, no ':' or '/'
 * (callers split on '/'), not hidden, no "..". */
static int check_file(const char *text, size_t text_len, const char *s,
                      size_t len, struct err *e)
{
	char show[96];

	if (len == 0)
		return err_set(e, -EINVAL, "bad volume id '%s': empty name",
		               shown(text, text_len, show));
	if (len > STORE_FILE_MAX)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': a name is longer than %d "
		               "bytes",
		               shown(text, text_len, show), STORE_FILE_MAX);
	if (memchr(s, ':', len) != NULL)
		return err_set(e, -EINVAL, "bad volume id '%s': ':' in a name",
		               shown(text, text_len, show));
	if (s[0] == '.')
		return err_set(e, -EINVAL,
		               "bad volume id '%s': a name starts with '.'",
		               shown(text, text_len, show));
	return 0;
}

/* Image names: (vm|base)-VMID-(disk-N|cloudinit|state-SNAP), then
 * ".raw"/".qcow2" when with_ext (dir), nothing more when not (rbd). */
static bool parse_image_name(const char *s, size_t len, bool with_ext,
                             uint32_t *vmid, bool *is_base, uint32_t *disk,
                             char format[8])
{
	const char *p, *end = s + len, *dash;
	uint64_t n;

	if (with_ext) {
		if (has_suffix(s, len, ".raw", false)) {
			end -= 4;
			strcpy(format, "raw");
		} else if (has_suffix(s, len, ".qcow2", false)) {
			end -= 6;
			strcpy(format, "qcow2");
		} else {
			return false;
		}
	} else {
		strcpy(format, "raw");
	}
	if (starts_with(s, len, "vm-")) {
		*is_base = false;
		p = s + 3;
	} else if (starts_with(s, len, "base-")) {
		*is_base = true;
		p = s + 5;
	} else {
		return false;
	}
	dash = memchr(p, '-', (size_t)(end - p));
	if (dash == NULL || !parse_vmid(p, (size_t)(dash - p), vmid))
		return false;
	p = dash + 1;
	*disk = STORE_DISK_NONE;
	if (starts_with(p, (size_t)(end - p), "disk-")) {
		p += 5;
		if (!parse_decimal(p, (size_t)(end - p), 9, &n))
			return false;
		*disk = (uint32_t)n;
		return true;
	}
	if ((size_t)(end - p) == 9 && memcmp(p, "cloudinit", 9) == 0)
		return true;
	if (starts_with(p, (size_t)(end - p), "state-")) {
		char snap[STORE_SNAP_MAX + 1];

		p += 6;
		if ((size_t)(end - p) > STORE_SNAP_MAX)
			return false;
		copy_text(snap, sizeof snap, p, (size_t)(end - p));
		return store_snap_name_check(snap, NULL) == 0;
	}
	return false;
}

static int parse_images_dir(const char *text, size_t text_len, const char *vol,
                            size_t vol_len, struct store_volid *out,
                            struct err *e)
{
	const char *part[4];
	size_t part_len[4], nparts = 0;
	const char *p = vol, *end = vol + vol_len;
	char show[96], fmt[8];
	uint32_t vmid, disk;
	bool is_base;
	int rv;

	for (;;) {
		const char *slash = memchr(p, '/', (size_t)(end - p));
		size_t n =
		        slash != NULL ? (size_t)(slash - p) : (size_t)(end - p);

		if (nparts == 4)
			return err_set(e, -EINVAL,
			               "bad volume id '%s': too many '/'",
			               shown(text, text_len, show));
		part[nparts] = p;
		part_len[nparts] = n;
		nparts++;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	if (nparts != 2 && nparts != 4)
		return err_set(
		        e, -EINVAL,
		        "bad volume id '%s': an image is VMID/FILE or, "
		        "for a linked clone, BASEVMID/BASEFILE/VMID/FILE",
		        shown(text, text_len, show));
	if (nparts == 4) {
		uint32_t base_vmid, base_file_vmid;

		if (!parse_vmid(part[0], part_len[0], &base_vmid))
			return err_set(e, -EINVAL,
			               "bad volume id '%s': base VMID is not a "
			               "number in 100..999999999",
			               shown(text, text_len, show));
		rv = check_file(text, text_len, part[1], part_len[1], e);
		if (rv != 0)
			return rv;
		if (!parse_image_name(part[1], part_len[1], true,
		                      &base_file_vmid, &is_base, &disk, fmt) ||
		    !is_base)
			return err_set(
			        e, -EINVAL,
			        "bad volume id '%s': the base of a linked "
			        "clone must be base-VMID-....raw|qcow2",
			        shown(text, text_len, show));
		if (base_file_vmid != base_vmid)
			return err_set(e, -EINVAL,
			               "bad volume id '%s': directory VMID %u "
			               "differs from the base image's VMID %u",
			               shown(text, text_len, show), base_vmid,
			               base_file_vmid);
		out->base_vmid = base_vmid;
		copy_text(out->base_file, sizeof out->base_file, part[1],
		          part_len[1]);
		part[0] = part[2];
		part_len[0] = part_len[2];
		part[1] = part[3];
		part_len[1] = part_len[3];
	}
	if (!parse_vmid(part[0], part_len[0], &vmid))
		return err_set(e, -EINVAL,
		               "bad volume id '%s': VMID directory is not a "
		               "number in 100..999999999",
		               shown(text, text_len, show));
	rv = check_file(text, text_len, part[1], part_len[1], e);
	if (rv != 0)
		return rv;
	if (!parse_image_name(part[1], part_len[1], true, &out->vmid,
	                      &out->is_base, &out->disk, out->format))
		return err_set(e, -EINVAL,
		               "bad volume id '%s': an image file is "
		               "vm-VMID-disk-N, base-VMID-disk-N, "
		               "vm-VMID-cloudinit or vm-VMID-state-NAME with "
		               ".raw or .qcow2",
		               shown(text, text_len, show));
	if (out->vmid != vmid)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': directory VMID %u differs "
		               "from the file's VMID %u",
		               shown(text, text_len, show), vmid, out->vmid);
	if (out->base_vmid != 0 && strcmp(out->format, "qcow2") != 0)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': a linked clone is qcow2",
		               shown(text, text_len, show));
	copy_text(out->file, sizeof out->file, part[1], part_len[1]);
	out->content = STORE_CT_IMAGES;
	return 0;
}

static int parse_images_rbd(const char *text, size_t text_len, const char *vol,
                            size_t vol_len, struct store_volid *out,
                            struct err *e)
{
	const char *slash = memchr(vol, '/', vol_len), *name = vol;
	size_t name_len = vol_len;
	char show[96], fmt[8];
	uint32_t disk;
	bool is_base;
	int rv;

	if (slash != NULL) {
		size_t base_len = (size_t)(slash - vol);

		rv = check_file(text, text_len, vol, base_len, e);
		if (rv != 0)
			return rv;
		if (!parse_image_name(vol, base_len, false, &out->base_vmid,
		                      &is_base, &disk, fmt) ||
		    !is_base)
			return err_set(
			        e, -EINVAL,
			        "bad volume id '%s': the base of a linked "
			        "clone must be base-VMID-...",
			        shown(text, text_len, show));
		copy_text(out->base_file, sizeof out->base_file, vol, base_len);
		name = slash + 1;
		name_len = vol_len - base_len - 1;
		if (memchr(name, '/', name_len) != NULL)
			return err_set(e, -EINVAL,
			               "bad volume id '%s': too many '/'",
			               shown(text, text_len, show));
	}
	rv = check_file(text, text_len, name, name_len, e);
	if (rv != 0)
		return rv;
	if (!parse_image_name(name, name_len, false, &out->vmid, &out->is_base,
	                      &out->disk, out->format))
		return err_set(e, -EINVAL,
		               "bad volume id '%s': an rbd image is "
		               "vm-VMID-disk-N, base-VMID-disk-N, "
		               "vm-VMID-cloudinit or vm-VMID-state-NAME",
		               shown(text, text_len, show));
	copy_text(out->file, sizeof out->file, name, name_len);
	out->content = STORE_CT_IMAGES;
	return 0;
}

/* The extension of a backup: Proxmox's \.(tgz|(tar|vma)(\.(gz|lzo|zst|
 * bz2))?)$, case-sensitive. Returns its length with the dot, or 0. */
static size_t backup_ext(const char *s, size_t len, char format[8])
{
	static const char *const bases[] = {"tar", "vma"};
	static const char *const comps[] = {"", ".gz", ".lzo", ".zst", ".bz2"};
	size_t b, c;

	if (has_suffix(s, len, ".tgz", false)) {
		strcpy(format, "tgz");
		return 4;
	}
	for (b = 0; b < CAIRN_ARRAY_SIZE(bases); b++) {
		for (c = 0; c < CAIRN_ARRAY_SIZE(comps); c++) {
			char ext[16];

			snprintf(ext, sizeof ext, ".%s%s", bases[b], comps[c]);
			if (has_suffix(s, len, ext, false)) {
				strcpy(format, ext + 1);
				return strlen(ext);
			}
		}
	}
	return 0;
}

/* vztmpl: \.(tar|tar\.(gz|xz|zst|bz2))$ in any case; the format is "tar"
 * or "t" and the compressor ("tgz", "tzst"), as Proxmox lists them. */
static bool vztmpl_ext(const char *s, size_t len, char format[8])
{
	static const char *const comps[] = {"gz", "xz", "zst", "bz2"};
	size_t c;

	if (has_suffix(s, len, ".tar", true)) {
		strcpy(format, "tar");
		return len > 4;
	}
	for (c = 0; c < CAIRN_ARRAY_SIZE(comps); c++) {
		char ext[16];

		snprintf(ext, sizeof ext, ".tar.%s", comps[c]);
		if (has_suffix(s, len, ext, true)) {
			snprintf(format, 8, "t%s", comps[c]);
			return len > strlen(ext);
		}
	}
	return false;
}

static int parse_file_volume(const char *text, size_t text_len,
                             const char *type, size_t type_len,
                             const char *name, size_t name_len,
                             struct store_volid *out, struct err *e)
{
	static const char *const import_exts[] = {"qcow2", "raw", "vmdk", "ova",
	                                          "ovf"};
	char show[96], what[96];
	size_t i;
	int rv;

	rv = check_file(text, text_len, name, name_len, e);
	if (rv != 0)
		return rv;
	if (memchr(name, '/', name_len) != NULL)
		return err_set(e, -EINVAL, "bad volume id '%s': too many '/'",
		               shown(text, text_len, show));
	copy_text(out->file, sizeof out->file, name, name_len);
	if (type_len == 3 && memcmp(type, "iso", 3) == 0) {
		out->content = STORE_CT_ISO;
		strcpy(out->format, "iso");
		if ((has_suffix(name, name_len, ".iso", true) ||
		     has_suffix(name, name_len, ".img", true)) &&
		    name_len > 4)
			return 0;
		return err_set(e, -EINVAL,
		               "bad volume id '%s': an ISO image ends in .iso "
		               "or .img",
		               shown(text, text_len, show));
	}
	if (type_len == 6 && memcmp(type, "vztmpl", 6) == 0) {
		out->content = STORE_CT_VZTMPL;
		if (vztmpl_ext(name, name_len, out->format))
			return 0;
		return err_set(
		        e, -EINVAL,
		        "bad volume id '%s': a container template ends "
		        "in .tar, .tar.gz, .tar.xz, .tar.zst or .tar.bz2",
		        shown(text, text_len, show));
	}
	if (type_len == 6 && memcmp(type, "backup", 6) == 0) {
		static const char *const kinds[] = {
		        "vzdump-qemu-", "vzdump-lxc-", "vzdump-openvz-"};
		size_t ext_len;

		out->content = STORE_CT_BACKUP;
		ext_len = backup_ext(name, name_len, out->format);
		if (ext_len == 0 || ext_len == name_len)
			return err_set(e, -EINVAL,
			               "bad volume id '%s': a backup ends in "
			               ".vma, .tar or .tgz, optionally with "
			               ".gz, .lzo, .zst or .bz2",
			               shown(text, text_len, show));
		for (i = 0; i < CAIRN_ARRAY_SIZE(kinds); i++) {
			size_t k = strlen(kinds[i]);
			const char *dash;

			if (!starts_with(name, name_len, kinds[i]))
				continue;
			dash = memchr(name + k, '-', name_len - k);
			if (dash == NULL)
				break;
			if (!parse_vmid(name + k, (size_t)(dash - name - k),
			                &out->vmid))
				return err_set(
				        e, -EINVAL,
				        "bad volume id '%s': the backup's "
				        "VMID is not a number in "
				        "100..999999999",
				        shown(text, text_len, show));
			break;
		}
		return 0;
	}
	if (type_len == 8 && memcmp(type, "snippets", 8) == 0) {
		out->content = STORE_CT_SNIPPETS;
		strcpy(out->format, "snippet");
		return 0;
	}
	if (type_len == 6 && memcmp(type, "import", 6) == 0) {
		out->content = STORE_CT_IMPORT;
		for (i = 0; i < CAIRN_ARRAY_SIZE(import_exts); i++) {
			size_t n = strlen(import_exts[i]);

			if (name_len > n + 1 && name[name_len - n - 1] == '.' &&
			    memcmp(name + name_len - n, import_exts[i], n) ==
			            0) {
				strcpy(out->format, import_exts[i]);
				return 0;
			}
		}
		return err_set(e, -EINVAL,
		               "bad volume id '%s': an import ends in .qcow2, "
		               ".raw, .vmdk, .ova or .ovf",
		               shown(text, text_len, show));
	}
	return err_set(e, -EINVAL,
	               "bad volume id '%s': unknown volume type '%s' (iso, "
	               "vztmpl, backup, snippets, import or a VMID)",
	               shown(text, text_len, show),
	               shown(type, type_len, what));
}

int store_volid_parse_n(const char *text, size_t len, bool is_rbd,
                        struct store_volid *out, struct err *e)
{
	const char *colon, *vol;
	char show[96], id[STORE_ID_MAX + 1];
	size_t id_len, vol_len;
	int rv;

	memset(out, 0, sizeof *out);
	out->disk = STORE_DISK_NONE;
	if (len == 0)
		return err_set(e, -EINVAL, "empty volume id");
	if (len > STORE_VOLID_MAX)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': longer than %d bytes",
		               shown(text, len, show), STORE_VOLID_MAX);
	rv = check_chars(text, len, e);
	if (rv != 0)
		return rv;
	colon = memchr(text, ':', len);
	if (colon == NULL)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': no ':' after the storage",
		               shown(text, len, show));
	id_len = (size_t)(colon - text);
	if (id_len > STORE_ID_MAX)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': storage id longer than %d",
		               shown(text, len, show), STORE_ID_MAX);
	copy_text(id, sizeof id, text, id_len);
	rv = store_id_check(id, e);
	if (rv != 0)
		return e != NULL ? err_wrap(e, "bad volume id '%s'",
		                            shown(text, len, show))
		                 : rv;
	vol = colon + 1;
	vol_len = len - id_len - 1;
	if (vol_len == 0)
		return err_set(e, -EINVAL, "bad volume id '%s': no volume name",
		               shown(text, len, show));
	if (memchr(vol, ':', vol_len) != NULL)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': ':' in the volume name",
		               shown(text, len, show));
	if (vol[0] == '/')
		return err_set(e, -EINVAL,
		               "bad volume id '%s': the name starts with '/'",
		               shown(text, len, show));
	if (vol[vol_len - 1] == '/')
		return err_set(e, -EINVAL,
		               "bad volume id '%s': the name ends with '/'",
		               shown(text, len, show));
	if (memmem(vol, vol_len, "//", 2) != NULL)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': '//' in the name",
		               shown(text, len, show));
	if (memmem(vol, vol_len, "..", 2) != NULL)
		return err_set(e, -EINVAL,
		               "bad volume id '%s': '..' in the name",
		               shown(text, len, show));
	copy_text(out->storage, sizeof out->storage, text, id_len);
	copy_text(out->name, sizeof out->name, vol, vol_len);
	if (is_rbd) {
		if (starts_with(vol, vol_len, "vm-") ||
		    starts_with(vol, vol_len, "base-"))
			return parse_images_rbd(text, len, vol, vol_len, out,
			                        e);
		return err_set(e, -EINVAL,
		               "bad volume id '%s': an rbd storage holds only "
		               "images (vm-VMID-... or base-VMID-...)",
		               shown(text, len, show));
	}
	if (isdigit((unsigned char)vol[0]))
		return parse_images_dir(text, len, vol, vol_len, out, e);
	{
		const char *slash = memchr(vol, '/', vol_len);

		if (slash == NULL)
			return err_set(
			        e, -EINVAL,
			        "bad volume id '%s': expected TYPE/NAME or "
			        "VMID/FILE",
			        shown(text, len, show));
		return parse_file_volume(
		        text, len, vol, (size_t)(slash - vol), slash + 1,
		        vol_len - (size_t)(slash - vol) - 1, out, e);
	}
}

int store_volid_parse(const char *text, bool is_rbd, struct store_volid *out,
                      struct err *e)
{
	return store_volid_parse_n(text, strlen(text), is_rbd, out, e);
}

static const char *content_dir_name(enum store_content content)
{
	switch (content) {
	case STORE_CT_ISO:
		return "iso";
	case STORE_CT_VZTMPL:
		return "vztmpl";
	case STORE_CT_BACKUP:
		return "backup";
	case STORE_CT_SNIPPETS:
		return "snippets";
	case STORE_CT_IMPORT:
		return "import";
	default:
		return NULL;
	}
}

int store_volid_format(const struct store_volid *v, bool is_rbd, char *out,
                       size_t size)
{
	struct store_volid check;
	char text[STORE_VOLID_MAX + 2];
	bool is_image =
	        v->content == STORE_CT_IMAGES || v->content == STORE_CT_ROOTDIR;
	int n;

	if (is_image && is_rbd && v->base_vmid != 0)
		n = snprintf(text, sizeof text, "%s:%s/%s", v->storage,
		             v->base_file, v->file);
	else if (is_image && is_rbd)
		n = snprintf(text, sizeof text, "%s:%s", v->storage, v->file);
	else if (is_image && v->base_vmid != 0)
		n = snprintf(text, sizeof text, "%s:%u/%s/%u/%s", v->storage,
		             v->base_vmid, v->base_file, v->vmid, v->file);
	else if (is_image)
		n = snprintf(text, sizeof text, "%s:%u/%s", v->storage, v->vmid,
		             v->file);
	else if (content_dir_name(v->content) != NULL)
		n = snprintf(text, sizeof text, "%s:%s/%s", v->storage,
		             content_dir_name(v->content), v->file);
	else
		return -EINVAL;
	if (n < 0 || (size_t)n >= sizeof text)
		return -EINVAL;
	if (store_volid_parse_n(text, (size_t)n, is_rbd, &check, NULL) != 0)
		return -EINVAL;
	/* The parse checks the file against its directory; for rbd, which
	 * has none, the owner must be checked here. */
	if (is_image &&
	    (check.vmid != v->vmid ||
	     (v->base_vmid != 0 && check.base_vmid != v->base_vmid)))
		return -EINVAL;
	if ((size_t)n >= size)
		return -ENOSPC;
	memcpy(out, text, (size_t)n + 1);
	return 0;
}

/* ------------------------------------------------------------ sizes */

int store_size_parse(const char *text, uint64_t default_unit, uint64_t *bytes,
                     struct err *e)
{
	const uint64_t limit = (uint64_t)INT64_MAX;
	const char *p = text;
	uint64_t whole = 0, frac = 0, frac_scale = 1, unit = default_unit;
	char show[96];
	size_t len = strlen(text);

	if (!isdigit((unsigned char)*p))
		return err_set(e, -EINVAL,
		               "bad size '%s': expected a number with an "
		               "optional unit K, M, G or T",
		               shown(text, len, show));
	while (isdigit((unsigned char)*p)) {
		uint64_t digit = (uint64_t)(*p - '0');

		if (whole > (limit - digit) / 10)
			return err_set(e, -ERANGE, "size '%s' is too large",
			               shown(text, len, show));
		whole = whole * 10 + digit;
		p++;
	}
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return err_set(e, -EINVAL,
			               "bad size '%s': no digits after '.'",
			               shown(text, len, show));
		while (isdigit((unsigned char)*p)) {
			/* 6 decimals keep frac * unit (< 10^6 * 2^40) in
			 * range; more is no size anyone means. */
			if (frac_scale == 1000000)
				return err_set(e, -EINVAL,
				               "bad size '%s': more than 6 "
				               "decimals",
				               shown(text, len, show));
			frac = frac * 10 + (uint64_t)(*p - '0');
			frac_scale *= 10;
			p++;
		}
	}
	if (*p != '\0') {
		static const char units[] = "KMGT";
		const char *u = strchr(units, *p);

		if (u == NULL || (p[1] != '\0' && strcmp(p + 1, "iB") != 0))
			return err_set(
			        e, -EINVAL,
			        "bad size '%s': unknown unit (K, M, G or "
			        "T)",
			        shown(text, len, show));
		unit = UINT64_C(1) << (10 * (1 + (u - units)));
	}
	CAIRN_ASSERT(unit >= 1 && unit <= (UINT64_C(1) << 40));
	if (whole > limit / unit)
		return err_set(e, -ERANGE, "size '%s' is too large",
		               shown(text, len, show));
	whole *= unit;
	frac = frac * unit / frac_scale;
	if (whole > limit - frac)
		return err_set(e, -ERANGE, "size '%s' is too large",
		               shown(text, len, show));
	if (whole + frac == 0)
		return err_set(e, -EINVAL, "size 0");
	*bytes = whole + frac;
	return 0;
}

void store_size_format(uint64_t bytes, char *out, size_t size)
{
	static const char units[] = "KMGT";
	int i = -1;

	while (i < 3 && bytes != 0 && bytes % 1024 == 0) {
		bytes /= 1024;
		i++;
	}
	if (i < 0)
		snprintf(out, size, "%llu", (unsigned long long)bytes);
	else
		snprintf(out, size, "%llu%c", (unsigned long long)bytes,
		         units[i]);
}

/*
 * Preloaded (LD_PRELOAD) by the wand, vips and Lambda images: libnuma's error hooks, made quiet.
 *
 * Writing HEIC (and heicconv's HEIC-output probe when a wand or vips backend loads) opens libheif's
 * x265 encoder, whose thread pool asks libnuma to set each worker thread's memory policy
 * (numa_set_interleave_mask, numa_set_localalloc). Docker's and containerd's default seccomp
 * profiles refuse set_mempolicy without CAP_SYS_NICE, and libnuma's default numa_error() then
 * perror()s "set_mempolicy: Operation not permitted" on the process's stderr, once per call.
 * The policy is only a placement hint: the encoder runs the same without it, so nothing is lost
 * but the noise. libnuma declares numa_error() and numa_warn() weak so that a program can
 * replace them (numa(3)); these replacements say nothing and leave errno as it was.
 */

void numa_error(char *where) { (void)where; }

void numa_warn(int number, char *format, ...) {
    (void)number;
    (void)format;
}

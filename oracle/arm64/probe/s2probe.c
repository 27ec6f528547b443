// SPDX-License-Identifier: GPL-2.0
/*
 * s2probe: the /init of the arm64 KVM oracle guest. It reads replay operations
 * (JSON lines, docs/replay-format.md) from /ops.jsonl, performs each one on the
 * real /dev/kvm and prints one answer line per operation on the console:
 *
 *   @@S2H {"kernel":...,"ctr_el0":...}        once, before the operations
 *   @@S2A {"i":N,"r":"0"|"EINVAL",...}        one per operation, N from 1
 *   @@S2END {"ops":N}                         after the last operation
 *
 * A failing operation never stops the run: its errno is the answer. Then the
 * guest powers off. Built static with the aarch64 cross compiler.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/klog.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <linux/kvm.h>

#define CAP_ARM_CACHEABLE_PFNMAP 243
#define CARVED_BASE 0x70000000UL
#define CARVED_SIZE 0x10000000UL
/* Guest markers: IPAs no generated memslot covers (the generator keeps below 256 MiB free). */
#define DONE_IPA 0x0a000000UL
#define ABORT_IPA 0x0a001000UL
/* Every byte of guest-visible test memory holds this instruction: str xzr, [x3]. */
#define FILL_INSN 0xf900007fU

struct s2o_leaf {
	int32_t vm_fd;
	uint32_t level;
	uint64_t ipa;
	uint64_t desc;
};
#define S2O_GET_LEAF _IOWR('S', 1, struct s2o_leaf)

static int kvm_fd = -1, pfn_fd = -1;
static int vm_fd = -1, vm_failed, vcpu_fd = -1;
static struct kvm_run *run;
static size_t run_size;
static uint64_t code_ipa;
static struct kvm_vcpu_init vcpu_init;

/* ---- tiny JSON-line field reader: flat objects of strings and numbers ---- */

static const char *field(const char *line, const char *key)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	return p ? p + strlen(pat) : NULL;
}

static int get_str(const char *line, const char *key, char *out, size_t n)
{
	const char *p = field(line, key);
	size_t i = 0;

	if (!p || *p != '"')
		return 0;
	for (p++; *p && *p != '"' && i + 1 < n; p++)
		out[i++] = *p;
	out[i] = 0;
	return 1;
}

static int get_u64(const char *line, const char *key, uint64_t *v)
{
	const char *p = field(line, key);

	if (!p)
		return 0;
	if (*p == '"')
		p++;
	*v = strtoull(p, NULL, 0);
	return 1;
}

static uint64_t u64_or(const char *line, const char *key, uint64_t dflt)
{
	uint64_t v;

	return get_u64(line, key, &v) ? v : dflt;
}

/* ---- answers ---- */

static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case E2BIG: return "E2BIG";
	case ENOEXEC: return "ENOEXEC";
	case EBADF: return "EBADF";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case EINVAL: return "EINVAL";
	case ENOSPC: return "ENOSPC";
	case ERANGE: return "ERANGE";
	case ENOSYS: return "ENOSYS";
	case ENOTTY: return "ENOTTY";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EHWPOISON: return "EHWPOISON";
	default: return "E?";
	}
}

static void answer(int i, int err, const char *extra)
{
	printf("@@S2A {\"i\":%d,\"r\":\"%s\"%s%s}\n", i, errname(err), extra && *extra ? "," : "", extra ? extra : "");
	fflush(stdout);
}

/* ---- memory ---- */

static void fill(volatile uint32_t *p, size_t bytes)
{
	for (size_t i = 0; i < bytes / 4; i++)
		p[i] = FILL_INSN;
}

static int mode_of(const char *kind)
{
	static const char *const kinds[] = { "pfnmap_wb", "pfnmap_wc_any", "pfnmap_nc", "pfnmap_wc", "mixedmap_io_wb", "mixedmap_wb" };

	for (int m = 0; m < 6; m++)
		if (!strcmp(kind, kinds[m]))
			return m;
	return -1;
}

static int op_mmap(const char *l)
{
	char kind[32] = "";
	uint64_t uaddr = u64_or(l, "uaddr", 0), size = u64_or(l, "size", 0), off = u64_or(l, "offset", 0);
	void *p;
	int mode;

	get_str(l, "kind", kind, sizeof(kind));
	if (!strcmp(kind, "anon") || !strcmp(kind, "anon_ro")) {
		p = mmap((void *)uaddr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p == MAP_FAILED)
			return errno;
		fill(p, size);
		if (kind[4] && mprotect(p, size, PROT_READ))
			return errno;
		return 0;
	}
	mode = mode_of(kind);
	if (mode < 0)
		return ENOSYS;
	p = mmap((void *)uaddr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, pfn_fd,
		 (off_t)((((uint64_t)mode << 16) | (off >> 12)) << 12));
	return p == MAP_FAILED ? errno : 0;
}

/* ---- vCPU ---- */

#define CORE_REG(x) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offsetof(struct kvm_regs, x) / sizeof(uint32_t)))
#define VBAR_EL1 (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM64_SYSREG | (3 << 14) | (0 << 11) | (12 << 7) | (0 << 3) | 0)

static int set_reg(uint64_t id, uint64_t v)
{
	struct kvm_one_reg r = { .id = id, .addr = (uint64_t)(uintptr_t)&v };

	return ioctl(vcpu_fd, KVM_SET_ONE_REG, &r) ? errno : 0;
}

static int op_vcpu(const char *l)
{
	uint64_t slot = u64_or(l, "slot", 0), ipa = u64_or(l, "gpa", 0), uaddr = u64_or(l, "uaddr", 0);
	static const uint32_t main_code[] = {
		0xf9400025, 0xf900007f, 0x14000000, 0x14000000, /* 0x00 read:  ldr x5,[x1]; str xzr,[x3]; b . */
		0xf9000022, 0xf900007f, 0x14000000, 0x14000000, /* 0x10 write: str x2,[x1]; str xzr,[x3]; b . */
		0xd61f0020, 0x14000000,                         /* 0x20 exec:  br x1; b . */
	};
	uint32_t *code;
	struct kvm_userspace_memory_region mr;

	if (vm_fd < 0 || vm_failed)
		return EBADF;
	code = mmap((void *)uaddr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	if (code == MAP_FAILED)
		return errno;
	memcpy(code, main_code, sizeof(main_code));
	for (int v = 0; v < 16; v++) { /* VBAR_EL1 = code + 0x800: every vector stores to ABORT_IPA */
		code[0x200 + v * 32] = 0xf900009f; /* str xzr, [x4] */
		code[0x200 + v * 32 + 1] = 0x14000000;
	}
	mr = (struct kvm_userspace_memory_region){ .slot = (uint32_t)slot, .guest_phys_addr = ipa, .memory_size = 4096, .userspace_addr = uaddr };
	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &mr))
		return errno;
	vcpu_fd = ioctl(vm_fd, KVM_CREATE_VCPU, 0);
	if (vcpu_fd < 0)
		return errno;
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu_fd, 0);
	if (run == MAP_FAILED) {
		run = NULL;
		return errno;
	}
	if (ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &vcpu_init))
		return errno;
	vcpu_init.features[0] |= 1U << KVM_ARM_VCPU_PSCI_0_2;
	if (ioctl(vcpu_fd, KVM_ARM_VCPU_INIT, &vcpu_init))
		return errno;
	code_ipa = ipa;
	return 0;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static void leaf_of(uint64_t ipa, char *out, size_t n)
{
	struct s2o_leaf lf = { .vm_fd = vm_fd, .ipa = ipa };

	if (ioctl(pfn_fd, S2O_GET_LEAF, &lf)) {
		snprintf(out, n, ",\"leaf\":\"%s\"", errname(errno));
		return;
	}
	if (lf.level == 0xff) {
		snprintf(out, n, ",\"leaf\":\"none\"");
		return;
	}
	/* Attribute bits only: MemAttr[5:2] S2AP[7:6] SH[9:8] AF[10] XN[54:53]; the output address differs from the model's. */
	snprintf(out, n, ",\"leaf\":\"L%u:0x%llx\"", lf.level, (unsigned long long)(lf.desc & 0x00600000000007fcULL));
}

static int op_access(const char *l, char *extra, size_t n)
{
	char kind[16] = "";
	uint64_t ipa = u64_or(l, "gpa", 0), pc;
	int write, ret;

	extra[0] = 0;
	if (vm_fd < 0 || vm_failed || vcpu_fd < 0 || !run)
		return EBADF;
	get_str(l, "kind", kind, sizeof(kind));
	write = !strcmp(kind, "write");
	pc = code_ipa + (write ? 0x10 : !strcmp(kind, "exec") ? 0x20 : 0);
	/*
	 * Registers are set afresh for every access, but the vCPU is not initialised again: KVM_ARM_VCPU_INIT
	 * after a run unmaps the whole stage 2 on a CPU without FWB, which would hide what earlier accesses
	 * mapped. The exit of the previous run is not completed either (run->exit_reason is cleared below, so
	 * KVM_RUN does not finish the last MMIO access or step past it).
	 */
	if ((ret = set_reg(CORE_REG(regs.pstate), 0x3c5 /* EL1h, DAIF masked */)) ||
	    (ret = set_reg(CORE_REG(regs.pc), pc)) || (ret = set_reg(CORE_REG(regs.regs[1]), ipa)) ||
	    (ret = set_reg(CORE_REG(regs.regs[2]), ((uint64_t)FILL_INSN << 32) | FILL_INSN)) ||
	    (ret = set_reg(CORE_REG(regs.regs[3]), DONE_IPA)) || (ret = set_reg(CORE_REG(regs.regs[4]), ABORT_IPA)) ||
	    (ret = set_reg(VBAR_EL1, code_ipa + 0x800)))
		return ret;
	run->exit_reason = KVM_EXIT_UNKNOWN;
	alarm(5);
	ret = ioctl(vcpu_fd, KVM_RUN, 0) ? errno : 0;
	alarm(0);
	if (ret == 0) {
		const char *exit;
		char buf[64];

		if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == DONE_IPA)
			exit = "done";
		else if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == ABORT_IPA)
			exit = "abort";
		else if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == ipa && run->mmio.len == 8 &&
			 run->mmio.is_write == write)
			exit = "mmio";
		else {
			snprintf(buf, sizeof(buf), "exit%u@0x%llx", run->exit_reason, (unsigned long long)run->mmio.phys_addr);
			exit = buf;
		}
		snprintf(extra, n, "\"exit\":\"%s\"", exit);
	}
	if (pfn_fd >= 0) {
		size_t used = strlen(extra);

		leaf_of(ipa, extra + used, n - used);
		if (!used) /* no "exit": drop the leading comma */
			memmove(extra, extra + 1, strlen(extra));
	}
	return ret;
}

/* ---- operations ---- */

static int op_create_vm(const char *l)
{
	int fd = ioctl(kvm_fd, KVM_CREATE_VM, (unsigned long)u64_or(l, "type", 0));

	if (fd < 0) {
		vm_failed = 1;
		return errno;
	}
	vm_fd = fd; /* earlier VMs stay open, as in the replay runner */
	vm_failed = 0;
	vcpu_fd = -1;
	run = NULL;
	return 0;
}

static int op_set(const char *l)
{
	uint64_t v = u64_or(l, "v", 1);

	if (vm_fd < 0 || vm_failed)
		return EBADF;
	if (v == 1) {
		struct kvm_userspace_memory_region r = {
			.slot = (uint32_t)u64_or(l, "slot", 0), .flags = (uint32_t)u64_or(l, "flags", 0),
			.guest_phys_addr = u64_or(l, "gpa", 0), .memory_size = u64_or(l, "size", 0),
			.userspace_addr = u64_or(l, "uaddr", 0),
		};
		return ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) ? errno : 0;
	}
	return ENOSYS; /* the generator writes v1 only: no guest_memfd on these kernels' oracle runs */
}

static int op_cap(const char *l, char *extra, size_t n)
{
	char fd[8] = "";
	int r, target;

	get_str(l, "fd", fd, sizeof(fd));
	target = !strcmp(fd, "vm") ? vm_fd : kvm_fd;
	if (!strcmp(fd, "vm") && (vm_fd < 0 || vm_failed))
		return EBADF;
	r = ioctl(target, KVM_CHECK_EXTENSION, (unsigned long)u64_or(l, "cap", 0));
	if (r < 0)
		return errno;
	snprintf(extra, n, "\"value\":%d", r);
	return 0;
}

static int op_enable_cap(const char *l)
{
	struct kvm_enable_cap c = { .cap = (uint32_t)u64_or(l, "cap", 0) };

	if (vm_fd < 0 || vm_failed)
		return EBADF;
	return ioctl(vm_fd, KVM_ENABLE_CAP, &c) ? errno : 0;
}

static void header(void)
{
	struct utsname u;
	uint64_t ctr, midr;
	static char log[1 << 16];
	int len;

	uname(&u);
	__asm__ volatile("mrs %0, ctr_el0" : "=r"(ctr));
	__asm__ volatile("mrs %0, midr_el1" : "=r"(midr));
	len = klogctl(3 /* SYSLOG_ACTION_READ_ALL */, log, sizeof(log) - 1);
	log[len > 0 ? len : 0] = 0;
	printf("@@S2H {\"kernel\":\"%s\",\"ctr_el0\":\"0x%llx\",\"midr_el1\":\"0x%llx\",\"fwb\":%s,\"vhe\":%s,"
	       "\"ipa_limit\":%d,\"mte\":%d,\"cap243_sys\":%d,\"leaf_ioctl\":%s}\n",
	       u.release, (unsigned long long)ctr, (unsigned long long)midr,
	       strstr(log, "Stage-2 Force Write-Back") ? "true" : "false",
	       strstr(log, "VHE mode initialized") && !strstr(log, "nVHE mode initialized") ? "true" : "false",
	       kvm_fd >= 0 ? ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE) : -1,
	       kvm_fd >= 0 ? ioctl(kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_MTE) : -1,
	       kvm_fd >= 0 ? ioctl(kvm_fd, KVM_CHECK_EXTENSION, CAP_ARM_CACHEABLE_PFNMAP) : -1,
	       pfn_fd >= 0 ? "true" : "false");
	fflush(stdout);
}

int main(void)
{
	static char line[4096];
	struct sigaction sa = { .sa_handler = on_alarm };
	FILE *ops;
	int i = 0, mfd;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	sigaction(SIGALRM, &sa, NULL); /* no SA_RESTART: a stuck KVM_RUN returns EINTR */
	mfd = open("/s2oracle_pfnmap.ko", O_RDONLY);
	if (mfd < 0 || syscall(SYS_finit_module, mfd, "", 0))
		printf("@@S2LOG module: %s\n", strerror(errno));
	pfn_fd = open("/dev/s2oracle_pfnmap", O_RDWR);
	if (pfn_fd >= 0) { /* fill the carved RAM with the marker instruction once */
		void *p = mmap(NULL, CARVED_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, pfn_fd, 0);

		if (p != MAP_FAILED) {
			fill(p, CARVED_SIZE);
			munmap(p, CARVED_SIZE);
		}
	}
	kvm_fd = open("/dev/kvm", O_RDWR);
	if (kvm_fd >= 0)
		run_size = (size_t)ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	header();
	ops = fopen("/ops.jsonl", "r");
	while (ops && fgets(line, sizeof(line), ops)) {
		char op[24] = "", extra[256] = "";
		int err;

		if (line[0] != '{')
			continue;
		i++;
		get_str(line, "op", op, sizeof(op));
		if (kvm_fd < 0)
			err = ENODEV;
		else if (!strcmp(op, "create_vm"))
			err = op_create_vm(line);
		else if (!strcmp(op, "set"))
			err = op_set(line);
		else if (!strcmp(op, "cap"))
			err = op_cap(line, extra, sizeof(extra));
		else if (!strcmp(op, "enable_cap"))
			err = op_enable_cap(line);
		else if (!strcmp(op, "mmap"))
			err = op_mmap(line);
		else if (!strcmp(op, "munmap"))
			err = munmap((void *)u64_or(line, "uaddr", 0), u64_or(line, "size", 0)) ? errno : 0;
		else if (!strcmp(op, "vcpu"))
			err = op_vcpu(line);
		else if (!strcmp(op, "access"))
			err = op_access(line, extra, sizeof(extra));
		else
			err = ENOSYS;
		answer(i, err, extra);
	}
	printf("@@S2END {\"ops\":%d}\n", i);
	fflush(stdout);
	sync();
	reboot(RB_POWER_OFF);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * s2oracle_pfnmap: hands user space the RAM that the kernel was told to leave
 * alone (mem=768M on a 1 GiB QEMU virt guest leaves 0x70000000-0x80000000
 * outside the linear map, so pfn_is_map_memory() is false for it), mapped the
 * ways nvgrace-gpu and similar drivers map device memory.
 *
 * mmap(/dev/s2oracle_pfnmap, offset): bits [15:0] of the page offset are the
 * page index into the carved range, bits [19:16] the mapping mode:
 *   0  remap_pfn_range, default (cacheable, MT_NORMAL) pgprot: nvgrace usemem
 *   1  remap_pfn_range, pgprot_writecombine + VM_ALLOW_ANY_UNCACHED: resmem
 *   2  remap_pfn_range, pgprot_noncached (MT_DEVICE_nGnRnE)
 *   3  remap_pfn_range, pgprot_writecombine without VM_ALLOW_ANY_UNCACHED
 *   4  VM_MIXEDMAP|VM_IO, cacheable, pages inserted by vmf_insert_mixed()
 *   5  VM_MIXEDMAP without VM_IO, cacheable, vmf_insert_mixed()
 *
 * ioctl(S2O_GET_LEAF) walks a VM's stage-2 table (read-only, under the MMU
 * lock) and returns the leaf descriptor that maps an IPA, so the oracle can
 * compare the memory type KVM wrote, not only whether the access worked.
 */
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/version.h>
#include <linux/file.h>
#include <linux/kvm_host.h>
#include <linux/uaccess.h>
#include <asm/kvm_pgtable.h>
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 17, 0)
#include <linux/pfn_t.h>
#endif

static unsigned long base = 0x70000000UL;
module_param(base, ulong, 0444);
static unsigned long size = 0x10000000UL;
module_param(size, ulong, 0444);

#define MODE_SHIFT 16
#define INDEX_MASK ((1UL << MODE_SHIFT) - 1)

static vm_fault_t s2o_fault(struct vm_fault *vmf)
{
	struct vm_area_struct *vma = vmf->vma;
	unsigned long idx = (vma->vm_pgoff & INDEX_MASK) +
			    ((vmf->address - vma->vm_start) >> PAGE_SHIFT);
	unsigned long pfn = PHYS_PFN(base) + idx;

	if ((idx << PAGE_SHIFT) >= size)
		return VM_FAULT_SIGBUS;
#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 17, 0)
	return vmf_insert_mixed(vma, vmf->address, __pfn_to_pfn_t(pfn, 0));
#else
	return vmf_insert_mixed(vma, vmf->address, pfn);
#endif
}

static const struct vm_operations_struct s2o_mixed_ops = {
	.fault = s2o_fault,
};

static int s2o_mmap(struct file *f, struct vm_area_struct *vma)
{
	unsigned long len = vma->vm_end - vma->vm_start;
	unsigned long mode = vma->vm_pgoff >> MODE_SHIFT;
	unsigned long off = (vma->vm_pgoff & INDEX_MASK) << PAGE_SHIFT;

	if (off >= size || len > size - off)
		return -EINVAL;
	switch (mode) {
	case 0:
		break;
	case 1:
		vm_flags_set(vma, VM_ALLOW_ANY_UNCACHED);
		vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
		break;
	case 2:
		vma->vm_page_prot = pgprot_noncached(vma->vm_page_prot);
		break;
	case 3:
		vma->vm_page_prot = pgprot_writecombine(vma->vm_page_prot);
		break;
	case 4:
	case 5:
		vm_flags_set(vma, VM_MIXEDMAP | VM_DONTEXPAND | VM_DONTDUMP |
				  (mode == 4 ? VM_IO : 0));
		vma->vm_ops = &s2o_mixed_ops;
		return 0;
	default:
		return -EINVAL;
	}
	return remap_pfn_range(vma, vma->vm_start, PHYS_PFN(base + off), len,
			       vma->vm_page_prot);
}

struct s2o_leaf {
	__s32 vm_fd;	/* in: a KVM VM file descriptor of the caller */
	__u32 level;	/* out: level of the leaf, or 0xff when unmapped */
	__u64 ipa;	/* in */
	__u64 desc;	/* out: the leaf descriptor, 0 when unmapped */
};
#define S2O_GET_LEAF _IOWR('S', 1, struct s2o_leaf)

static long s2o_get_leaf(struct s2o_leaf *l)
{
	struct fd f = fdget(l->vm_fd);
	struct kvm *kvm;
	struct kvm_pgtable *pgt;
	kvm_pte_t *table, desc = 0;
	int level, shift, bits;
	long ret = 0;

	l->level = 0xff;
	l->desc = 0;
	if (!fd_file(f))
		return -EBADF;
	/* Only a KVM VM file has "anon_inode:kvm-vm" as its name. */
	if (strcmp(fd_file(f)->f_path.dentry->d_name.name, "kvm-vm")) {
		ret = -EINVAL;
		goto out;
	}
	kvm = fd_file(f)->private_data;
	read_lock(&kvm->mmu_lock);
	pgt = kvm->arch.mmu.pgt;
	if (!pgt || l->ipa >= BIT_ULL(pgt->ia_bits))
		goto unlock;
	table = (kvm_pte_t *)pgt->pgd;
	for (level = pgt->start_level; level <= 3; level++) {
		shift = PAGE_SHIFT + (3 - level) * (PAGE_SHIFT - 3);
		bits = level == pgt->start_level ? pgt->ia_bits - shift
						  : PAGE_SHIFT - 3;
		desc = READ_ONCE(table[(l->ipa >> shift) & (BIT_ULL(bits) - 1)]);
		if (!(desc & 1))
			break;
		if (level == 3 || (desc & 3) == 1) {
			l->level = level;
			l->desc = desc;
			break;
		}
		table = __va(desc & GENMASK_ULL(47, PAGE_SHIFT));
	}
unlock:
	read_unlock(&kvm->mmu_lock);
out:
	fdput(f);
	return ret;
}

static long s2o_ioctl(struct file *f, unsigned int cmd, unsigned long arg)
{
	struct s2o_leaf l;
	long ret;

	if (cmd != S2O_GET_LEAF)
		return -ENOTTY;
	if (copy_from_user(&l, (void __user *)arg, sizeof(l)))
		return -EFAULT;
	ret = s2o_get_leaf(&l);
	if (!ret && copy_to_user((void __user *)arg, &l, sizeof(l)))
		ret = -EFAULT;
	return ret;
}

static const struct file_operations s2o_fops = {
	.owner = THIS_MODULE,
	.mmap = s2o_mmap,
	.unlocked_ioctl = s2o_ioctl,
};

static struct miscdevice s2o_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "s2oracle_pfnmap",
	.fops = &s2o_fops,
};

static int __init s2o_init(void)
{
	pr_info("s2oracle_pfnmap: pa 0x%lx size 0x%lx pfn_is_map_memory=%d\n",
		base, size, pfn_is_map_memory(PHYS_PFN(base)));
	return misc_register(&s2o_dev);
}

static void __exit s2o_exit(void)
{
	misc_deregister(&s2o_dev);
}

module_init(s2o_init);
module_exit(s2o_exit);
MODULE_DESCRIPTION("S2Lab oracle: carved RAM mapped as VM_PFNMAP / VM_MIXEDMAP");
MODULE_LICENSE("GPL");

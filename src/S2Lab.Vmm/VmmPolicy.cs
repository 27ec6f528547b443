namespace S2Lab.Vmm;

/// <summary>What the VMM does with capability 243 (KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED).</summary>
public enum CapabilityPolicy
{
    /// <summary>Create every memslot and let KVM decide (what QEMU does today).</summary>
    TrustKernel,

    /// <summary>
    /// Query capability 243 on the VM fd; refuse to assign cacheable device memory, and to accept an incoming
    /// migration that carries it, where the answer is not 1.
    /// </summary>
    CheckCapability,
}

/// <summary>Where the kernel accepts KVM_MEM_ENABLE_CACHEABLE_PFNMAP: whether to set it on cacheable device regions.</summary>
public enum CacheableFlagChoice
{
    /// <summary>Set the flag: the guest gets cacheable device memory, and the VM can only live on FWB+DIC hosts.</summary>
    PreferCacheable,

    /// <summary>Leave it clear: the memory is mapped Device (or Normal-NC) everywhere, so the VM can move anywhere.</summary>
    PreferMigratable,
}

/// <summary>A VMM's policy.</summary>
/// <param name="Capability">What it does with capability 243.</param>
/// <param name="FlagChoice">Its choice for KVM_MEM_ENABLE_CACHEABLE_PFNMAP.</param>
/// <param name="KernelHasCacheableFlag">
/// The VMM is built against a kernel ABI with KVM_MEM_ENABLE_CACHEABLE_PFNMAP (proposal-memslot-flag). A VMM knows
/// its kernel's ABI from headers; a flag bit the kernel does not know is EINVAL (rule 21).
/// </param>
public sealed record VmmPolicy(CapabilityPolicy Capability, CacheableFlagChoice FlagChoice, bool KernelHasCacheableFlag)
{
    public static VmmPolicy TrustKernel { get; } = new(CapabilityPolicy.TrustKernel, CacheableFlagChoice.PreferCacheable, false);

    public override string ToString() =>
        (Capability == CapabilityPolicy.TrustKernel ? "trust-kernel" : "check-capability") +
        (KernelHasCacheableFlag ? FlagChoice == CacheableFlagChoice.PreferCacheable ? ", flag=prefer-cacheable" : ", flag=prefer-migratable" : "");
}

using S2Lab.Arch.Cpu;
using S2Lab.Arch.Translation;

namespace S2Lab.Kernel.Kvm.Stage2;

/// <summary>kvm_arm_setup_stage2 and kvm_get_vtcr: how KVM sizes and configures a VM's stage-2 tables on a CPU.</summary>
public static class KvmStage2
{
    /// <summary>
    /// Tables for a KVM VM on <paramref name="cpu"/>: VTCR_EL2 as kvm_get_vtcr builds it for <paramref name="ipaBits"/>
    /// (4K pages, PS from the CPU's PARange), FWB from ID_AA64MMFR2_EL1.FWB (stage2_has_fwb) and DIC from CTR_EL0.
    /// Other options (VMID, TLB, memory, events) come from <paramref name="options"/>; its Fwb/Dic are overridden.
    /// </summary>
    /// <returns>The tables, or null with -EINVAL when the IPA size is outside 32..kvm_ipa_limit (kvm_arm_setup_stage2).</returns>
    public static Stage2PageTable? Create(CpuModel cpu, int ipaBits, out Stage2Errno error, Stage2TableOptions? options = null)
    {
        error = Stage2Errno.None;
        if (ipaBits < 32 || ipaBits > cpu.IpaLimitBits)
        {
            error = Stage2Errno.EINVAL;
            return null;
        }

        var vtcr = VtcrEl2.ForIpaSize(ipaBits, cpu.PaBits);
        var validation = vtcr.Validate(Stage2Features.From(cpu));
        if (!validation.IsValid)
        {
            error = Stage2Errno.EINVAL;
            return null;
        }

        options = (options ?? new Stage2TableOptions()) with { Fwb = cpu.HasStage2Fwb, Dic = cpu.HasCacheDic };
        return new Stage2PageTable(validation.Geometry!, options);
    }
}

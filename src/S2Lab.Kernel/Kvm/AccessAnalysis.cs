using S2Lab.Kernel.Kvm.Stage2;

namespace S2Lab.Kernel.Kvm;

/// <summary>The effective memory type of a completed access and the hazards it reveals.</summary>
internal static class AccessAnalysis
{
    public static void Analyse(ModelKvmVm vm, GuestAccessResult r, in Stage2Leaf leaf, ulong pa)
    {
        // Filled in with the attrs combine (S2Lab.Arch.Attributes) once that branch is merged.
    }
}

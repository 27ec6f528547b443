using System.Reflection;
using System.Reflection.Emit;
using S2Lab.Kernel.Kvm;
using S2Lab.Kernel.Kvm.Uapi;
using S2Lab.Kernel.Model;

namespace S2Lab.Cli.Tests;

/// <summary>
/// Issue 11 ("the Lab casts vCPUs to ModelKvmVcpu"): the scenario runner and the step kinds drive guests through the
/// seams (a one-op <see cref="GuestProgram"/> through <see cref="IGuestLoader"/>, KVM_RUN) and learn what happened from
/// the kernel's events. The scan reads the IL of every method (lambdas and closures included, as nested types), the
/// fields and the locals: none may name the model's vCPU or VM, nor cast a seam to the model type behind it. Where the
/// Lab reads the model under a VMM, it goes through <c>LabHost.ModelOf</c>, which keeps what it built typed.
/// </summary>
public class LabSeamLayeringTests
{
    private static readonly Assembly Lab = Assembly.Load("S2Lab.Lab");

    private static readonly Dictionary<short, OpCode> OpCodesByValue = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value);

    /// <summary>The model's vCPU and VM, and the request/result types of their direct access API.</summary>
    private static readonly Type[] ModelGuestTypes = [typeof(ModelKvmVcpu), typeof(ModelKvmVm), typeof(GuestAccessRequest), typeof(GuestAccessResult)];

    /// <summary>The model's implementations of the seams: a cast to one of them looks under a seam.</summary>
    private static readonly Type[] SeamImplementations = typeof(ModelKvmSystem).Assembly.GetTypes()
        .Where(t => t.IsClass && t.Namespace != typeof(IKvmSystem).Namespace && t.GetInterfaces().Any(i => i.Namespace == typeof(IKvmSystem).Namespace))
        .ToArray();

    /// <summary>Each instruction's opcode and the member or type its token names (null for other operands).</summary>
    private static IEnumerable<(OpCode Op, MemberInfo? Operand)> Instructions(MethodBase method)
    {
        var il = method.GetMethodBody()?.GetILAsByteArray();
        if (il is null)
            yield break;
        var typeArgs = method.DeclaringType is { IsGenericType: true } d ? d.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;
        for (int i = 0; i < il.Length;)
        {
            short value = il[i++];
            if (value == 0xFE)
                value = unchecked((short)(0xFE00 | il[i++]));
            var op = OpCodesByValue[value];
            MemberInfo? operand = null;
            if (op.OperandType is OperandType.InlineType or OperandType.InlineMethod or OperandType.InlineField or OperandType.InlineTok)
                operand = method.Module.ResolveMember(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
            i += op.OperandType switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + (4 * BitConverter.ToInt32(il, i)),
                _ => 4,
            };
            yield return (op, operand);
        }
    }

    /// <summary><paramref name="t"/> with its element and generic argument types (List&lt;ModelKvmVcpu&gt; names ModelKvmVcpu).</summary>
    private static IEnumerable<Type> Parts(Type? t)
    {
        if (t is null)
            yield break;
        yield return t;
        if (t.HasElementType)
        {
            foreach (var p in Parts(t.GetElementType()))
                yield return p;
        }

        if (t.IsGenericType)
        {
            foreach (var p in t.GetGenericArguments().SelectMany(Parts))
                yield return p;
        }
    }

    private static IEnumerable<Type> Named(MemberInfo? m) => m switch
    {
        Type t => Parts(t),
        FieldInfo f => Parts(f.DeclaringType).Concat(Parts(f.FieldType)),
        MethodInfo mi => Parts(mi.DeclaringType).Concat(Parts(mi.ReturnType)).Concat(mi.GetParameters().SelectMany(p => Parts(p.ParameterType))),
        ConstructorInfo c => Parts(c.DeclaringType).Concat(c.GetParameters().SelectMany(p => Parts(p.ParameterType))),
        _ => [],
    };

    private const BindingFlags Everything = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    /// <summary>The types <paramref name="types"/> name (in IL, fields, locals and signatures), with where.</summary>
    internal static List<(string Where, Type Named)> TypesNamed(IEnumerable<Type> types)
    {
        var found = new List<(string, Type)>();
        foreach (var type in types)
        {
            foreach (var f in type.GetFields(Everything))
                found.AddRange(Parts(f.FieldType).Select(t => ($"{type.FullName}.{f.Name}", t)));
            foreach (var m in type.GetMethods(Everything).Cast<MethodBase>().Concat(type.GetConstructors(Everything)))
            {
                var where = $"{type.FullName}.{m.Name}";
                found.AddRange(Named(m).Select(t => (where, t)));
                foreach (var local in m.GetMethodBody()?.LocalVariables ?? [])
                    found.AddRange(Parts(local.LocalType).Select(t => (where, t)));
                foreach (var (_, operand) in Instructions(m))
                    found.AddRange(Named(operand).Select(t => (where, t)));
            }
        }

        return found;
    }

    /// <summary>The casts (castclass, isinst, unbox) in <paramref name="types"/>' methods, with where.</summary>
    internal static List<(string Where, Type Target)> Casts(IEnumerable<Type> types) =>
        [.. from type in types
            from m in type.GetMethods(Everything).Cast<MethodBase>().Concat(type.GetConstructors(Everything))
            from i in Instructions(m)
            where (i.Op == OpCodes.Castclass || i.Op == OpCodes.Isinst || i.Op == OpCodes.Unbox_Any) && i.Operand is Type
            select ($"{type.FullName}.{m.Name}", (Type)i.Operand!)];

    /// <summary>The Lab types that drive guests: the scenario runner (with its nested types) and the step kinds.</summary>
    private static List<Type> GuestDrivers() =>
        [.. Lab.GetTypes().Where(t => (t.FullName ?? "").StartsWith("S2Lab.Lab.Runner.ScenarioRunner", StringComparison.Ordinal)
                                      || t.Namespace == "S2Lab.Lab.Scenarios.Kinds")];

    [Fact]
    public void The_scenario_runner_and_the_step_kinds_never_name_the_model_vcpu_or_vm()
    {
        var drivers = GuestDrivers();
        Assert.Contains(drivers, t => t.FullName == "S2Lab.Lab.Runner.ScenarioRunner+VmState");
        var bad = TypesNamed(drivers).Where(x => ModelGuestTypes.Contains(x.Named)).Select(x => $"{x.Where}: {x.Named.Name}").Distinct().Order().ToList();
        Assert.True(bad.Count == 0, "the Lab drives guests through the seams, but these name the model's guest types:\n" + string.Join("\n", bad));
    }

    [Fact]
    public void The_runner_the_step_kinds_and_LabHost_cast_no_seam_to_its_model_type()
    {
        Assert.Contains(typeof(ModelKvmVcpu), SeamImplementations);
        Assert.Contains(typeof(ModelAddressSpace), SeamImplementations);
        var types = GuestDrivers().Concat(Lab.GetTypes().Where(t => (t.FullName ?? "").StartsWith("S2Lab.Lab.Runner.LabHost", StringComparison.Ordinal)
                                                                    || t.FullName == "S2Lab.Lab.Runner.VmmModel")).ToList();
        Assert.Contains(types, t => t.Name == "LabHost");
        var bad = Casts(types).Where(c => SeamImplementations.Contains(c.Target)).Select(c => $"{c.Where}: ({c.Target.Name})").Distinct().Order().ToList();
        Assert.True(bad.Count == 0, "a seam is cast to its model type (use LabHost.ModelOf):\n" + string.Join("\n", bad));
    }

    /// <summary>What the scan must catch: a cast, a pattern match and a lambda's use of the model's vCPU.</summary>
    private static class Offender
    {
        public static uint Cast(IKvmVcpu v) => ((ModelKvmVcpu)v).Id;

        public static bool Match(IHostAddressSpace m) => m is ModelAddressSpace;

        public static Func<IKvmVcpu, bool> Lambda() => v => v is ModelKvmVcpu { SctlrM: true };
    }

    [Fact]
    public void The_scan_sees_casts_pattern_matches_and_lambdas()
    {
        var offender = typeof(Offender).Assembly.GetTypes().Where(t => (t.FullName ?? "").StartsWith(typeof(Offender).FullName!, StringComparison.Ordinal)).ToList();
        var casts = Casts(offender).Select(c => c.Target).ToList();
        Assert.Contains(typeof(ModelKvmVcpu), casts);
        Assert.Contains(typeof(ModelAddressSpace), casts);
        var named = TypesNamed(offender).Where(x => x.Where.Contains("<", StringComparison.Ordinal)).Select(x => x.Named).ToList();
        Assert.Contains(typeof(ModelKvmVcpu), named); // in the lambda's compiler-generated method
    }
}

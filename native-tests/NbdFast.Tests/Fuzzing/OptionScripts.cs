using System.Buffers.Binary;
using CsCheck;
using NbdFast.Fuzzing;
using NbdFast.Protocol;

namespace NbdFast.Tests.Fuzzing;

/// <summary>One option as a client would send it, before mutation.</summary>
internal sealed record OptionStep(uint Option, byte[] Data);

/// <summary>How one option's encoding is damaged (most are left intact).</summary>
internal enum Damage
{
    None,
    HugeLength,
    LengthOffByDelta,
    BadMagic,
    HugeInnerLength,
}

/// <summary>Generators of client scripts for the handshake: plausible option sequences, then mutated.</summary>
internal static class OptionScripts
{
    private static readonly Gen<string> Names = Gen.OneOf("a", "b", "", "x", "a\0", new string('n', NbdLimits.MaxStringLength + 1));

    private static readonly Gen<string> Queries = Gen.OneOf("base:", NbdLimits.BaseAllocation, "qemu:dirty-bitmap:x", "", "base:allocation\u00e9");

    private static readonly Gen<OptionStep> Steps = Gen.Frequency(
        (2, Gen.Const(new OptionStep((uint)NbdOption.List, []))),
        (3, Gen.Select(Gen.OneOf(NbdOption.Info, NbdOption.Go), Names, Gen.UShort[0, 5].Array[0, 4],
            (option, name, infos) => new OptionStep((uint)option, TransmissionSession.InfoData(name, infos)))),
        (2, Gen.OneOf(NbdOption.StructuredReply, NbdOption.ExtendedHeaders).Select(o => new OptionStep((uint)o, []))),
        (3, Gen.Select(Gen.OneOf(NbdOption.ListMetaContext, NbdOption.SetMetaContext), Names, Queries.Array[0, 3],
            (option, name, queries) => new OptionStep((uint)option, TransmissionSession.MetaContextData(name, queries)))),
        (1, Gen.Select(Gen.Bool, Gen.Byte.Array[0, 4], (empty, data) => new OptionStep((uint)NbdOption.StartTls, empty ? [] : data))),
        (1, Gen.Const(new OptionStep((uint)NbdOption.Abort, []))),
        (1, Names.Select(name => new OptionStep((uint)NbdOption.ExportName, System.Text.Encoding.UTF8.GetBytes(name)))),
        (1, Gen.Select(Gen.UInt.Where(o => o is 0 or > (uint)NbdOption.ExtendedHeaders), Gen.Byte.Array[0, 8],
            (option, data) => new OptionStep(option, data))),
        (1, Gen.Select(Gen.UInt[1, 11], Gen.Byte.Array[0, 24], (option, data) => new OptionStep(option, data))));

    private static readonly Gen<Damage> Damages = Gen.Frequency(
        (20, Gen.Const(Damage.None)), (1, Gen.Const(Damage.HugeLength)), (1, Gen.Const(Damage.LengthOffByDelta)),
        (1, Gen.Const(Damage.BadMagic)), (2, Gen.Const(Damage.HugeInnerLength)));

    /// <summary>A whole script: server configuration, client flags, damaged options, maybe cut short, maybe trailing junk.</summary>
    public static readonly Gen<(HandshakeConfig Config, byte[] Script)> Scripts =
        Gen.Select(
            Gen.Byte.Select(HandshakeConfig.FromByte),
            Gen.Frequency((8, Gen.Const(3u)), (1, Gen.OneOf(0u, 1u, 2u)), (1, Gen.UInt)),
            Gen.Select(Steps, Damages, Gen.UInt).Array[0, 8],
            Gen.Frequency((4, Gen.Const(-1)), (1, Gen.Int[0, 400])),
            Gen.Byte.Array[0, 24],
            (config, flags, steps, cut, junk) => (config, Encode(flags, steps, cut, junk)));

    public static byte[] Encode(uint flags, (OptionStep Step, Damage Damage, uint Noise)[] steps, int cut, byte[] junk)
    {
        var script = new List<byte>();
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, flags);
        script.AddRange(word);
        foreach ((OptionStep step, Damage damage, uint noise) in steps)
        {
            byte[] data = (byte[])step.Data.Clone();
            uint length = (uint)data.Length;
            byte[] header = new byte[NbdLimits.OptionHeaderSize];
            switch (damage)
            {
                case Damage.HugeLength:
                    length = noise % 2 == 0 ? 0xFFFF_FFF0 : 0xFFFF_FFFF - noise % 65536;
                    break;
                case Damage.LengthOffByDelta:
                    length = (uint)Math.Max(0, data.Length + (int)(noise % 9) - 4);
                    break;
                case Damage.HugeInnerLength when data.Length >= 4:
                    BinaryPrimitives.WriteUInt32BigEndian(data, 0xFFFF_FFF0 - noise % 16);
                    break;
            }
            HandshakeCodec.WriteOptionHeader(header, step.Option, length);
            if (damage == Damage.BadMagic)
            {
                header[noise % 8] ^= (byte)(1 << (int)(noise / 8 % 8));
            }
            script.AddRange(header);
            script.AddRange(data);
        }
        script.AddRange(junk);
        byte[] bytes = [.. script];
        return cut >= 0 && cut < bytes.Length ? bytes[..cut] : bytes;
    }
}

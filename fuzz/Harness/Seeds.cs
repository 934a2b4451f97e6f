using System.Buffers.Binary;
using NbdFast.Protocol;

namespace NbdFast.Fuzzing;

/// <summary>
/// Valid sessions in the fuzz targets' input format (one configuration byte, then the client's bytes): the
/// committed seed corpora are written from these, and the property tests mutate them.
/// </summary>
public static class Seeds
{
    private const NbdClientFlags Client = NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes;

    /// <summary>Handshake sessions, named.</summary>
    public static IReadOnlyList<(string Name, byte[] Input)> Handshakes()
    {
        var plain = new HandshakeConfig(FuzzTls.None, WithResolver: true, WithOffer: true, SmallLimits: false);
        return
        [
            ("list-info-meta-go", Handshake(plain, Client,
                (NbdOption.List, []),
                (NbdOption.Info, TransmissionSession.InfoData("a", 1, 2, 3)),
                (NbdOption.StructuredReply, []),
                (NbdOption.ListMetaContext, TransmissionSession.MetaContextData("a")),
                (NbdOption.SetMetaContext, TransmissionSession.MetaContextData("a", NbdLimits.BaseAllocation)),
                (NbdOption.Go, TransmissionSession.InfoData("a", 3)))),
            ("export-name-zeroes", Handshake(plain, NbdClientFlags.FixedNewstyle, (NbdOption.ExportName, "a"u8.ToArray()))),
            ("oldstyle-client-export-name", Handshake(plain, NbdClientFlags.None, (NbdOption.ExportName, []))),
            ("list-then-abort", Handshake(plain with { WithOffer = false }, Client, (NbdOption.List, []), (NbdOption.Abort, []), (NbdOption.Go, TransmissionSession.InfoData("a")))),
            ("extended-meta-go", Handshake(plain, Client,
                (NbdOption.ExtendedHeaders, []),
                (NbdOption.StructuredReply, []),
                (NbdOption.SetMetaContext, TransmissionSession.MetaContextData("a", "base:", NbdLimits.BaseAllocation, "qemu:dirty-bitmap:x")),
                (NbdOption.Go, TransmissionSession.InfoData("")))),
            ("unknown-and-bad-options", Handshake(plain, Client,
                ((NbdOption)42, [1, 2, 3]),
                (NbdOption.StartTls, []),
                (NbdOption.Info, [0, 0, 0, 9, (byte)'a']),
                (NbdOption.Go, TransmissionSession.InfoData("nope")),
                (NbdOption.ExportName, "a"u8.ToArray()))),
            ("forced-tls-refusals", Handshake(plain with { Tls = FuzzTls.Required }, Client,
                (NbdOption.List, []), (NbdOption.Go, TransmissionSession.InfoData("a")), (NbdOption.StartTls, []))),
            ("selective-tls-hidden-export", Handshake(plain with { Tls = FuzzTls.Optional }, Client,
                (NbdOption.List, []), (NbdOption.Info, TransmissionSession.InfoData("b")), (NbdOption.Go, TransmissionSession.InfoData("a", 1)))),
            ("no-resolver-go", Handshake(plain with { WithResolver = false, SmallLimits = true }, Client,
                (NbdOption.Info, TransmissionSession.InfoData("x")), (NbdOption.Go, TransmissionSession.InfoData("x", 2)))),
        ];
    }

    /// <summary>Transmission sessions, named: every command in each reply style.</summary>
    public static IReadOnlyList<(string Name, byte[] Input)> Transmissions()
    {
        var result = new List<(string, byte[])>();
        foreach (FuzzReplies replies in Enum.GetValues<FuzzReplies>())
        {
            var config = new TransmissionConfig(replies, ReadOnly: false, AllocationContext: true, SmallPayload: false);
            result.Add(($"{replies.ToString().ToLowerInvariant()}-all-commands", Transmission(config, AllCommands(config.ExtendedHeaders))));
        }
        var readOnly = new TransmissionConfig(FuzzReplies.Structured, ReadOnly: true, AllocationContext: false, SmallPayload: true);
        result.Add(("readonly-small-payload", Transmission(readOnly,
            [Request(NbdCommand.Read, 0, 0, 8192), Request(NbdCommand.Write, NbdCommandFlags.Fua, 0, 16, new byte[16])])));
        return result;
    }

    public static byte[] Handshake(HandshakeConfig config, NbdClientFlags flags, params (NbdOption Option, byte[] Data)[] options)
    {
        var script = new List<byte> { config.ToByte() };
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(word, (uint)flags);
        script.AddRange(word);
        foreach ((NbdOption option, byte[] data) in options)
        {
            TransmissionSession.AddOption(script, option, data);
        }
        return [.. script];
    }

    public static byte[] Transmission(TransmissionConfig config, IEnumerable<(NbdRequest Request, byte[] Payload)> requests)
    {
        var script = new List<byte> { config.ToByte() };
        byte[] header = new byte[NbdLimits.ExtendedRequestHeaderSize];
        foreach ((NbdRequest request, byte[] payload) in requests)
        {
            NbdRequest wire = config.ExtendedHeaders && payload.Length > 0
                ? request with { Flags = request.Flags | NbdCommandFlags.PayloadLen, Length = request.Command == NbdCommand.Write ? request.Length : (ulong)payload.Length }
                : request;
            int size = RequestHeaderCodec.Write(header, wire, config.ExtendedHeaders);
            script.AddRange(header.AsSpan(0, size));
            script.AddRange(payload);
        }
        return [.. script];
    }

    public static (NbdRequest, byte[]) Request(NbdCommand command, NbdCommandFlags flags, ulong offset, ulong length, byte[]? payload = null) =>
        (new NbdRequest(flags, command, Cookie: (ulong)command << 32 | offset, offset, length), payload ?? []);

    public static (NbdRequest, byte[]) Request(NbdCommand command, ulong offset, ulong length) => Request(command, NbdCommandFlags.None, offset, length);

    private static List<(NbdRequest, byte[])> AllCommands(bool extended)
    {
        byte[] data = new byte[512];
        new Random(7).NextBytes(data);
        byte[] statusPayload = new byte[12];
        BinaryPrimitives.WriteUInt64BigEndian(statusPayload, 65536);
        BinaryPrimitives.WriteUInt32BigEndian(statusPayload.AsSpan(8), 1);
        var requests = new List<(NbdRequest, byte[])>
        {
            Request(NbdCommand.Write, NbdCommandFlags.Fua, 4096, 512, data),
            Request(NbdCommand.Read, NbdCommandFlags.DontFragment, 0, 65536),
            Request(NbdCommand.Read, 1 << 20, 0),
            Request(NbdCommand.Flush, 0, 0),
            Request(NbdCommand.Trim, 0, 4096),
            Request(NbdCommand.WriteZeroes, NbdCommandFlags.NoHole | NbdCommandFlags.FastZero, 8192, 4096),
            Request(NbdCommand.Cache, 0, 65536),
            Request(NbdCommand.BlockStatus, NbdCommandFlags.ReqOne, 0, 1 << 20),
            Request(NbdCommand.Read, (1 << 20) - 1, 2),
            Request((NbdCommand)99, 0, 0),
        };
        if (extended)
        {
            requests.Add(Request(NbdCommand.BlockStatus, NbdCommandFlags.None, 0, 12, statusPayload));
        }
        requests.Add(Request(NbdCommand.Disconnect, 0, 0));
        return requests;
    }
}

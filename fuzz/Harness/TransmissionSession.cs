using System.Buffers.Binary;
using System.Text;
using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Fuzzing;

/// <summary>Which reply style a fuzzed transmission phase negotiated.</summary>
public enum FuzzReplies
{
    Simple,
    Structured,
    Extended,
}

/// <summary>The transmission phase a fuzz input's first byte selects.</summary>
public sealed record TransmissionConfig(FuzzReplies Replies, bool ReadOnly, bool AllocationContext, bool SmallPayload)
{
    public const long DeviceSize = 1 << 20;

    public static TransmissionConfig FromByte(byte b) => new(
        (b & 3) switch { 1 => FuzzReplies.Structured, 2 or 3 => FuzzReplies.Extended, _ => FuzzReplies.Simple },
        (b & 4) != 0,
        (b & 8) == 0,
        (b & 16) != 0);

    public byte ToByte() => (byte)((int)Replies | (ReadOnly ? 4 : 0) | (AllocationContext ? 0 : 8) | (SmallPayload ? 16 : 0));

    /// <summary>Request headers are 32 bytes (extended) or 28 (compact).</summary>
    public bool ExtendedHeaders => Replies == FuzzReplies.Extended;
}

/// <summary>What a transmission session produced.</summary>
public sealed record TransmissionOutcome(byte[] Replies, bool ConnectionClosed);

/// <summary>
/// Negotiates a fixed handshake (reply style, base:allocation, GO "a") with a scripted client, then serves a
/// 1 MiB RAM disk to whatever request bytes follow. Nothing is caught: any exception escapes.
/// </summary>
public static class TransmissionSession
{
    public static TransmissionOutcome Run(TransmissionConfig config, ReadOnlySpan<byte> requests) =>
        RunAsync(config, requests.ToArray()).GetAwaiter().GetResult();

    public static async Task<TransmissionOutcome> RunAsync(TransmissionConfig config, ReadOnlyMemory<byte> requests)
    {
        byte[] prelude = Prelude(config);
        byte[] script = new byte[prelude.Length + requests.Length];
        prelude.CopyTo(script, 0);
        requests.CopyTo(script.AsMemory(prelude.Length));
        var stream = new ScriptedStream(script);
        var device = new MemoryDevice(TransmissionConfig.DeviceSize, config.SmallPayload ? 4096u : NbdLimits.DefaultMaxPayload);
        var export = new NbdExport(device, config.ReadOnly);
        var options = new NegotiationOptions { HandshakeTimeout = Timeout.InfiniteTimeSpan };
        (_, NbdConnection connection) = await NbdServer.ConnectAsync(new NbdChannel(stream), null,
            (name, _) => ValueTask.FromResult(name == "a" ? export : null), options).ConfigureAwait(false);
        if (stream.Consumed != prelude.Length)
        {
            throw new FuzzPropertyException("the handshake did not consume exactly the prelude");
        }
        int handshakeBytes = stream.Written.Length;
        await using (connection.ConfigureAwait(false))
        {
            await connection.ServeAsync().ConfigureAwait(false);
        }
        return new TransmissionOutcome(stream.Written[handshakeBytes..].ToArray(), stream.Disposed);
    }

    /// <summary>The client's handshake: fixed newstyle without zeroes, the reply style, base:allocation, GO "a".</summary>
    public static byte[] Prelude(TransmissionConfig config)
    {
        var script = new List<byte>();
        Span<byte> scratch = stackalloc byte[NbdLimits.OptionHeaderSize];
        HandshakeCodec.WriteClientFlags(scratch, NbdClientFlags.FixedNewstyle | NbdClientFlags.NoZeroes);
        script.AddRange(scratch[..4]);
        if (config.Replies == FuzzReplies.Structured)
        {
            AddOption(script, NbdOption.StructuredReply, []);
        }
        if (config.Replies == FuzzReplies.Extended)
        {
            AddOption(script, NbdOption.ExtendedHeaders, []);
        }
        if (config.AllocationContext && config.Replies != FuzzReplies.Simple)
        {
            AddOption(script, NbdOption.SetMetaContext, MetaContextData("a", NbdLimits.BaseAllocation));
        }
        AddOption(script, NbdOption.Go, InfoData("a"));
        return [.. script];
    }

    public static void AddOption(List<byte> script, NbdOption option, byte[] data)
    {
        Span<byte> header = stackalloc byte[NbdLimits.OptionHeaderSize];
        HandshakeCodec.WriteOptionHeader(header, (uint)option, (uint)data.Length);
        script.AddRange(header);
        script.AddRange(data);
    }

    /// <summary>INFO/GO data: the name and no information requests.</summary>
    public static byte[] InfoData(string name, params ushort[] infos)
    {
        var data = new List<byte>();
        AddString(data, name);
        data.Add((byte)(infos.Length >> 8));
        data.Add((byte)infos.Length);
        foreach (ushort info in infos)
        {
            data.Add((byte)(info >> 8));
            data.Add((byte)info);
        }
        return [.. data];
    }

    /// <summary>LIST/SET_META_CONTEXT data: the export name and the queries.</summary>
    public static byte[] MetaContextData(string export, params string[] queries)
    {
        var data = new List<byte>();
        AddString(data, export);
        Span<byte> count = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(count, (uint)queries.Length);
        data.AddRange(count);
        foreach (string query in queries)
        {
            AddString(data, query);
        }
        return [.. data];
    }

    private static void AddString(List<byte> data, string text)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        Span<byte> length = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(length, (uint)bytes.Length);
        data.AddRange(length);
        data.AddRange(bytes);
    }
}

using System.Buffers.Binary;
using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Tls;

/// <summary>TLS options, exports and small protocol checks shared by the TLS tests.</summary>
internal static class TlsSetup
{
    public const int DeviceSize = 1024 * 1024;

    /// <summary>Options with the test PKI's server certificate.</summary>
    public static NbdTlsOptions Options(NbdTlsMode mode = NbdTlsMode.Required, bool verifyClients = false, params string[] allowedClients) => new()
    {
        ServerCertificate = TestPki.Shared.LoadServerCertificate(),
        Mode = mode,
        VerifyClientCertificates = verifyClients,
        ClientCertificateAuthorities = verifyClients ? TestPki.Shared.LoadCaCollection() : null,
        AllowedClients = allowedClients,
    };

    /// <summary>A writable memory device whose first 64 KiB hold a pattern derived from <paramref name="seed"/>.</summary>
    public static MemoryDevice PatternDevice(int seed, out byte[] pattern)
    {
        var device = new MemoryDevice(DeviceSize);
        pattern = new byte[64 * 1024];
        new Random(seed).NextBytes(pattern);
        device.Write(0, pattern);
        return device;
    }

    /// <summary>Sends an option and asserts that its only reply is <paramref name="expected"/> for that option.</summary>
    public static async Task<RawOptionReply> ExpectSingleReplyAsync(RawNbdClient client, uint option, NbdOptionReplyType expected, ReadOnlyMemory<byte> payload = default)
    {
        IReadOnlyList<RawOptionReply> replies = await client.OptionAsync(option, payload);
        string describe = string.Join(", ", replies.Select(r => $"{r.Type}(option {r.Header.Option}) '{r.Text}'"));
        Assert.True(replies.Count == 1, $"option {option}: expected one reply, got {describe}");
        Assert.True(replies[0].Type == expected, $"option {option}: expected {expected}, got {describe}");
        Assert.Equal(option, replies[0].Header.Option);
        return replies[0];
    }

    /// <summary>Sends STARTTLS, expects the ACK, and runs the TLS handshake; returns the TLS client.</summary>
    public static async Task<RawNbdClient> StartTlsAsync(RawNbdClient plain, System.Security.Cryptography.X509Certificates.X509Certificate2? clientCertificate = null)
    {
        await ExpectSingleReplyAsync(plain, (uint)NbdOption.StartTls, NbdOptionReplyType.Ack);
        return await RawTls.UpgradeAsync(plain, clientCertificate);
    }

    /// <summary>GO, then a READ of the pattern (simple reply), then a clean disconnect.</summary>
    public static async Task GoReadAndDisconnectAsync(RawNbdClient client, string export, byte[] pattern)
    {
        RawExportInfo info = await client.GoAsync(export);
        Assert.Equal((ulong)DeviceSize, info.Size);
        await client.SendRequestAsync(NbdCommand.Read, 0, 4096, cookie: 42);
        RawReply read = await client.ReadReplyAsync(4096);
        Assert.True(read.IsSimple);
        Assert.Equal(NbdError.None, read.Error);
        Assert.Equal(42UL, read.Cookie);
        Assert.Equal(pattern.AsSpan(0, 4096).ToArray(), read.Payload);
        await client.SendDisconnectAsync();
        await client.AssertClosedAsync();
    }

    /// <summary>A payload nobody would mistake for an option header: 1000 bytes, IHAVEOPT sprinkled in.</summary>
    public static byte[] DistractingPayload()
    {
        var payload = new byte[1000];
        for (int i = 0; i + 8 <= payload.Length; i += 16)
        {
            BinaryPrimitives.WriteUInt64BigEndian(payload.AsSpan(i), NbdMagic.IHaveOpt);
        }
        return payload;
    }
}

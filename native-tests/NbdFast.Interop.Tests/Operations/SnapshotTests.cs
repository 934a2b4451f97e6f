using System.Security.Cryptography;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>--snapshot: clients write to a copy-on-write overlay; the base file never changes; the overlay goes with the last client.</summary>
public sealed class SnapshotTests
{
    private const int BaseSize = 8 << 20;

    /// <summary>Writes unaligned, sub-cluster and whole-cluster data, trims and zeroes, then checks every byte against a model built from the base.</summary>
    private const string WriteAndVerifyScript = """
        import nbd, sys
        uri, base_path = sys.argv[1], sys.argv[2]
        model = bytearray(open(base_path, "rb").read())
        h = nbd.NBD()
        h.connect_uri(uri)
        assert not h.is_read_only(), "snapshot exports are writable"
        def write(off, data):
            h.pwrite(bytes(data), off)
            model[off:off + len(data)] = data
        write(100, b"\x11" * 1000)                  # unaligned, inside one cluster
        write(1 << 20, b"\x22" * 65536)             # one whole cluster
        write((2 << 20) - 3000, b"\x33" * 7000)     # straddles a cluster boundary
        if h.can_trim():
            h.trim(128 * 1024, 4 << 20)             # trimmed data reads back as zeroes or as before; re-write to pin it
            write(4 << 20, b"\x44" * (128 * 1024))
        if h.can_zero():
            h.zero(4096, (3 << 20) + 10)
            model[(3 << 20) + 10:(3 << 20) + 10 + 4096] = bytes(4096)
        got = h.pread(len(model), 0)
        assert got == model, "overlay contents differ from the model"
        h.shutdown()
        print("verified", flush=True)
        """;

    private const string ReadAllScript = """
        import nbd, sys, hashlib
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        data = h.pread(h.get_size(), 0)
        print("sha256", hashlib.sha256(data).hexdigest(), flush=True)
        h.shutdown()
        """;

    [Theory(Timeout = 90_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task Snapshot_WritesReadBack_BaseUntouched_OverlayDiscardedWhenLastClientLeaves(Transport transport, Engine engine)
    {
        using var temp = new TempDirectory();
        string basePath = temp.File("base.img");
        byte[] content = RandomNumberGenerator.GetBytes(BaseSize);
        File.WriteAllBytes(basePath, content);
        string baseHash = Convert.ToHexStringLower(SHA256.HashData(content));

        using NbdfastProcess server = await transport.StartAsync(engine, "--snapshot", basePath);
        ToolResult written = await ExternalTool.PythonAsync(WriteAndVerifyScript, [server.Uri(), basePath], TimeSpan.FromSeconds(60));
        Assert.True(written.Succeeded, written.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Equal(baseHash, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(basePath))));

        // The writer has gone, so the next client starts from the base again.
        ToolResult reread = await ExternalTool.PythonAsync(ReadAllScript, [server.Uri()], TimeSpan.FromSeconds(60));
        Assert.True(reread.Succeeded, reread.Describe());
        Assert.Contains("sha256 " + baseHash, reread.Stdout, StringComparison.Ordinal);

        Assert.Equal(0, await server.StopAsync());
        Assert.Equal(baseHash, Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(basePath))));
    }

    [Fact(Timeout = 60_000)]
    public async Task Snapshot_QemuIoWritesAndReadsInOneSession()
    {
        using var temp = new TempDirectory();
        string basePath = temp.File("base.img");
        File.WriteAllBytes(basePath, new byte[BaseSize]);

        using NbdfastProcess server = await Transport.Unix.StartAsync("--snapshot", basePath);
        ToolResult io = await ExternalTool.RunAsync("qemu-io", ["-f", "raw", "-c", "write -P 0xab 512 4k", "-c", "read -P 0xab 512 4k", server.Uri()], TimeSpan.FromSeconds(30));

        Assert.True(io.Succeeded, io.Describe());
        Assert.DoesNotContain("Pattern verification failed", io.Stdout, StringComparison.Ordinal);
        Assert.All(File.ReadAllBytes(basePath), b => Assert.Equal(0, b));
    }
}

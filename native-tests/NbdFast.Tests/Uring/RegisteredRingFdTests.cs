using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Uring;

/// <summary>
/// Each reactor registers its ring fd with its own thread (IORING_REGISTER_RING_FDS, Linux 5.18) and then
/// enters the ring by that slot. The CI kernel has the feature, so registration must succeed, and a real
/// client's traffic must flow through rings entered that way.
/// </summary>
public sealed class RegisteredRingFdTests
{
    private const string Script = """
        import nbd, os, sys, json
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        for i in range(200):
            data = os.urandom(4096)
            h.pwrite(data, i * 4096)
            if h.pread(4096, i * 4096) != data:
                raise SystemExit(f"mismatch at block {i}")
        h.shutdown()
        print(json.dumps({"ok": True}))
        """;

    [Fact(Timeout = 120_000)]
    public async Task ReactorsEnterTheirRingsThroughTheRegisteredSlot()
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(2, out string? reason);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        Assert.True(engine.RingFdsRegistered, "IORING_REGISTER_RING_FDS failed on a kernel that has it");

        await using var device = new MemoryDevice(8 << 20);
        await using var host = new UringServerHost(engine, device);
        var result = await LibnbdPython.RunJsonAsync(Script, host.Uri);
        Assert.True(result.GetProperty("ok").GetBoolean());
    }
}

using System.Net.Sockets;
using NbdFast.Devices;
using NbdFast.Tests.Faults;
using NbdFast.IO.Uring;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Uring;

/// <summary>
/// Each reactor keeps its connections' sockets and device files in a fixed-file table (slots by connection
/// index). Connections come and go, so a slot is filled, cleared and filled again for the next connection
/// that gets the index; without the table (a kernel that refuses it) SQEs carry the descriptors.
/// </summary>
public sealed class FixedFileTests
{
    // Thirty connections one after another, each writing and reading back its own blocks, then all of them
    // checked again: a stale slot would send a connection's I/O to a closed socket or the wrong file.
    private const string Script = """
        import nbd, os, sys, json
        written = {}
        for c in range(30):
            h = nbd.NBD()
            h.connect_uri(sys.argv[1])
            for i in range(8):
                off = (c * 8 + i) * 4096
                data = os.urandom(4096)
                h.pwrite(data, off)
                written[off] = data
                if h.pread(4096, off) != data:
                    raise SystemExit(f"connection {c}: mismatch at {off}")
            h.shutdown()
        h = nbd.NBD()
        h.connect_uri(sys.argv[1])
        for off, data in written.items():
            if h.pread(4096, off) != data:
                raise SystemExit(f"re-read: mismatch at {off}")
        h.shutdown()
        print(json.dumps({"ok": True}))
        """;

    [Fact(Timeout = 120_000)]
    public async Task ConnectionsReuseFixedFileSlots()
    {
        using NbdUringEngine? engine = NbdUringEngine.TryCreate(1, out string? reason);
        Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        Assert.True(engine.FixedFilesRegistered, "the sparse fixed-file table was refused on a kernel that has it");
        await RunScriptOnFileAsync(engine);
    }

    [Fact(Timeout = 120_000)]
    public async Task WithoutTheTable_DescriptorsAreUsed()
    {
        NbdUringEngine? engine;
        Reactor.UseFixedFiles = false;
        try
        {
            engine = NbdUringEngine.TryCreate(1, out string? reason);
            Assert.True(engine is not null, $"io_uring is unavailable: {reason}");
        }
        finally
        {
            Reactor.UseFixedFiles = true;
        }
        using (engine)
        {
            Assert.False(engine.FixedFilesRegistered);
            await RunScriptOnFileAsync(engine);
        }
    }

    private static Task RunScriptOnFileAsync(NbdUringEngine engine) =>
        FileScript.RunAsync(engine, 4 << 20, Script, async host =>
        {
            // The server's side of each connection must really close: a slot left holding the socket would keep
            // it open in the kernel after the descriptor is gone, and the client would never see the end.
            for (int i = 0; i < 3; i++)
            {
                var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(host.EndPoint);
                var client = new RawNbdClient(new NetworkStream(socket, ownsSocket: true), socket);
                await client.StartAsync();
                await client.GoAsync("");
                await FaultHost.DisconnectAsync(client);
            }
        });
}

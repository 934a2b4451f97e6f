using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// SIGTERM with 64 writes in flight: every acknowledged write is in the file afterwards, requests after the
/// signal get ESHUTDOWN, clients in the handshake get NBD_REP_ERR_SHUTDOWN, a second signal exits at once.
/// </summary>
public sealed class GracefulShutdownTests
{
    private const int BlockSize = 4096;
    private const int InFlight = 64;

    /// <summary>
    /// Queues 64 writes (block i filled with i+1), signals the server, collects the completions, then sends more
    /// writes: prints one line per outcome so the test can check the file against what was acknowledged.
    /// </summary>
    private const string WriterScript = """
        import nbd, sys, os, signal, errno, time
        uri, pid = sys.argv[1], int(sys.argv[2])
        h = nbd.NBD()
        h.connect_uri(uri)
        buffers = [nbd.Buffer.from_bytearray(bytearray([i + 1]) * 4096) for i in range(64)]
        cookies = [h.aio_pwrite(buffers[i], i * 4096) for i in range(64)]
        os.kill(pid, signal.SIGTERM)
        done = {}
        for i, cookie in enumerate(cookies):
            while i not in done:
                try:
                    if h.aio_command_completed(cookie):
                        done[i] = 0
                        break
                except nbd.Error as e:
                    done[i] = e.errno
                    break
                h.poll(1)
        for i in range(64):
            print("write", i, "ok" if done[i] == 0 else "errno %s" % done[i], flush=True)
        # The signal reaches the server asynchronously: write on until the server answers ESHUTDOWN, then a few more.
        refused = 0
        for j in range(100):
            try:
                h.pwrite(bytes([200]) * 4096, (64 + j) * 4096)
                print("late", j, "ok", flush=True)
            except nbd.Error as e:
                print("late", j, "errno", e.errno, flush=True)
                refused += 1
                if refused == 4:
                    break
            if refused == 0:
                time.sleep(0.05)
        """;

    [Theory(Timeout = 90_000)]
    [MemberData(nameof(TransportExtensions.All), MemberType = typeof(TransportExtensions))]
    public async Task Sigterm_With64WritesInFlight_LosesNoAcknowledgedWrite_LateRequestsGetEshutdown(Transport transport, Engine engine)
    {
        using var temp = new TempDirectory();
        string path = temp.File("disk.img");
        File.WriteAllBytes(path, new byte[1 << 20]);
        using NbdfastProcess server = await transport.StartAsync(engine, "--writable", path);

        ToolResult run = await ExternalTool.PythonAsync(WriterScript, [server.Uri(), server.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)], TimeSpan.FromSeconds(60));
        Assert.True(run.Succeeded, run.Describe() + "\n--- server ---\n" + server.Stderr);
        Assert.Equal(0, await server.WaitForExitAsync(TimeSpan.FromSeconds(40)));   // the script's SIGTERM stops it

        string[] lines = run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        byte[] file = File.ReadAllBytes(path);
        int acknowledged = 0;
        for (int i = 0; i < InFlight; i++)
        {
            string outcome = lines.Single(l => l.StartsWith($"write {i} ", StringComparison.Ordinal));
            if (outcome.EndsWith(" ok", StringComparison.Ordinal))
            {
                acknowledged++;
                Assert.All(file.AsSpan(i * BlockSize, BlockSize).ToArray(), b => Assert.Equal(i + 1, b));
            }
            else
            {
                Assert.EndsWith(" errno ESHUTDOWN", outcome, StringComparison.Ordinal);   // arrived after the signal
            }
        }
        // Late writes: acknowledged ones (before the signal took effect) are in the file; once the server has
        // answered ESHUTDOWN it never accepts another.
        string[] late = [.. lines.Where(l => l.StartsWith("late ", StringComparison.Ordinal))];
        int firstRefused = Array.FindIndex(late, l => l.EndsWith(" errno ESHUTDOWN", StringComparison.Ordinal));
        Assert.True(firstRefused >= 0, "no late request got ESHUTDOWN\n" + run.Stdout);
        for (int j = 0; j < late.Length; j++)
        {
            if (j < firstRefused)
            {
                Assert.EndsWith(" ok", late[j], StringComparison.Ordinal);
                Assert.All(file.AsSpan((InFlight + j) * BlockSize, BlockSize).ToArray(), b => Assert.Equal(200, b));
            }
            else
            {
                Assert.EndsWith(" errno ESHUTDOWN", late[j], StringComparison.Ordinal);
            }
        }
        Assert.True(acknowledged + lines.Count(l => l.EndsWith("errno ESHUTDOWN", StringComparison.Ordinal)) >= InFlight, run.Stdout);
    }

    [Fact(Timeout = 60_000)]
    public async Task ClientInHandshake_GetsErrShutdown()
    {
        using NbdfastProcess server = await Transport.Tcp.StartAsync("--memory", "8M");
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, server.Port!.Value);
        NetworkStream stream = client.GetStream();
        byte[] greeting = new byte[18];
        await stream.ReadExactlyAsync(greeting);
        await stream.WriteAsync(new byte[] { 0, 0, 0, 3 });   // FIXED_NEWSTYLE | NO_ZEROES

        Signals.Send(server.Pid, Signals.SigTerm);
        await Task.Delay(300);
        byte[] option = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(option, 0x49484156454F5054);   // IHAVEOPT
        BinaryPrimitives.WriteUInt32BigEndian(option.AsSpan(8), 3);          // NBD_OPT_LIST, no data
        await stream.WriteAsync(option);
        byte[] reply = new byte[20];
        await stream.ReadExactlyAsync(reply);

        Assert.Equal(0x3e889045565a9UL, BinaryPrimitives.ReadUInt64BigEndian(reply));
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(8)));
        Assert.Equal(0x80000007u, BinaryPrimitives.ReadUInt32BigEndian(reply.AsSpan(12)));   // NBD_REP_ERR_SHUTDOWN
        Assert.Equal(0, await server.StopAsync(timeout: TimeSpan.FromSeconds(20)));
    }

    [Fact(Timeout = 60_000)]
    public async Task SecondSignal_ExitsAtOnceWithStatusOne()
    {
        using NbdfastProcess server = await Transport.Unix.StartAsync("--memory", "8M", "--shutdown-timeout", "60");
        using BackgroundTool holder = BackgroundTool.Python("""
            import nbd, sys, time
            h = nbd.NBD()
            h.connect_uri(sys.argv[1])
            print("connected", flush=True)
            time.sleep(60)
            """, server.Uri());
        await holder.WaitForLineAsync("connected", TimeSpan.FromSeconds(15));

        Signals.Send(server.Pid, Signals.SigTerm);
        await Task.Delay(200);
        int status = await server.StopAsync(Signals.SigTerm, TimeSpan.FromSeconds(5));

        Assert.Equal(1, status);
        Assert.Contains("second signal", server.Stderr, StringComparison.Ordinal);
    }
}

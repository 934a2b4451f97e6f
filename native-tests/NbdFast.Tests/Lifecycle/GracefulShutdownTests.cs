using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;
using NbdFast.Tests.Transmission;

namespace NbdFast.Tests.Lifecycle;

/// <summary>
/// ServeAsync's token as a graceful shutdown, on both transports: what was in flight is finished and answered,
/// what arrives later gets NBD_ESHUTDOWN (108 on the wire), the device is flushed after the last write, and the
/// session ends when the client leaves or the linger runs out.
/// </summary>
public class GracefulShutdownTests
{
    private const int InFlight = 64;
    private const int BlockSize = 4096;
    private const int Late = 8;

    /// <param name="transport">The transmission transport.</param>
    /// <param name="extended">Extended headers (error chunks) rather than simple replies.</param>
    [Theory]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task InFlightWritesAreAnsweredAndDurableAndLaterRequestsGetEShutdown(Transport transport, bool extended)
    {
        var device = new ShutdownProbeDevice(1 << 20);
        var options = new ServeOptions { ShutdownLinger = TimeSpan.FromMinutes(5) };
        await using LifecycleHost host = await LifecycleHost.StartServingAsync(transport, device, extended ? ReplyStyle.Extended : ReplyStyle.Simple, options);
        RawNbdClient client = host.Client;

        for (int i = 0; i < InFlight; i++)
        {
            await client.SendWriteAsync((ulong)(i * BlockSize), Block(i + 1), cookie: (ulong)i);
        }
        // All 64 have been read by the server and are waiting in the device when the shutdown begins.
        await device.WaitForWritesAsync(InFlight);
        await host.Shutdown.CancelAsync();

        for (int j = 0; j < Late; j++)
        {
            ulong cookie = 1000 + (ulong)j;
            ulong offset = (ulong)((InFlight + j) * BlockSize);
            if (j % 2 == 0)
            {
                await client.SendWriteAsync(offset, Block(0xEE), cookie);
            }
            else
            {
                await client.SendRequestAsync(NbdCommand.Read, offset, BlockSize, cookie);
            }
        }
        device.Open();

        Dictionary<ulong, RawReply> replies = await ReadRepliesAsync(client, InFlight + Late);
        for (int i = 0; i < InFlight; i++)
        {
            Assert.True(replies[(ulong)i].Error == NbdError.None, $"write {i} was in flight at shutdown but got {replies[(ulong)i].Error}");
        }
        for (int j = 0; j < Late; j++)
        {
            RawReply reply = replies[1000 + (ulong)j];
            Assert.Equal(108u, (uint)reply.Error);
            Assert.Equal(extended, reply.IsExtended);
        }

        // Lingering: still answering ESHUTDOWN, until the client says goodbye.
        await client.SendRequestAsync(NbdCommand.Flush, 0, 0, cookie: 2000);
        Assert.Equal(108u, (uint)Assert.Single(await client.ReadFullReplyAsync()).Error);
        await client.SendDisconnectAsync();
        await host.ServerFinishedAsync();
        await client.AssertClosedAsync();

        for (int i = 0; i < InFlight; i++)
        {
            Assert.Equal(Block(i + 1), ReadBack(device, i * BlockSize));
        }
        for (int j = 0; j < Late; j++)
        {
            Assert.Equal(new byte[BlockSize], ReadBack(device, (InFlight + j) * BlockSize));
        }
        Assert.True(device.Flushes >= 1, "the writable device was not flushed at shutdown");
        Assert.Equal(InFlight, device.WritesDoneAtLastFlush);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task ServeAsyncReturnsWhenTheLingerRunsOutWhileTheClientStaysConnected(Transport transport)
    {
        var device = new MemoryDevice(1 << 20);
        var options = new ServeOptions { ShutdownLinger = TimeSpan.FromMilliseconds(300) };
        await using LifecycleHost host = await LifecycleHost.StartServingAsync(transport, device, ReplyStyle.Structured, options);

        await host.Client.SendWriteAsync(0, Block(7), cookie: 1);
        Assert.Equal(NbdError.None, Assert.Single(await host.Client.ReadFullReplyAsync()).Error);
        await host.Shutdown.CancelAsync();

        // The client says nothing more and keeps the connection open: the linger ends the session.
        await host.ServerFinishedAsync();
        await host.Client.AssertClosedAsync();
        Assert.Equal(Block(7), ReadBack(device, 0));
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task ShutdownOfAnIdleReadOnlySessionAnswersEShutdownAndEndsOnDisconnect(Transport transport)
    {
        var device = new ShutdownProbeDevice(1 << 20);
        await using LifecycleHost host = await LifecycleHost.StartServingAsync(transport, device, ReplyStyle.Simple,
            new ServeOptions { ShutdownLinger = TimeSpan.FromMinutes(5) }, readOnly: true);
        await host.Shutdown.CancelAsync();

        await host.Client.SendRequestAsync(NbdCommand.Read, 0, BlockSize, cookie: 5);
        RawReply reply = await host.Client.ReadReplyAsync();
        Assert.Equal((5UL, NbdError.Shutdown), (reply.Cookie, reply.Error));
        await host.Client.SendDisconnectAsync();
        await host.ServerFinishedAsync();
        await host.Client.AssertClosedAsync();
        Assert.Equal(0, device.Flushes);
    }

    [Theory]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task FileDeviceIsServedAndFlushedThroughAShutdown(Transport transport)
    {
        using var directory = new TempDirectory();
        string path = directory.File("disk.img");
        await File.WriteAllBytesAsync(path, new byte[1 << 20]);
        await using (FileDevice device = FileDevice.Open(path, readOnly: false))
        {
            await using LifecycleHost host = await LifecycleHost.StartServingAsync(transport, device, ReplyStyle.Simple,
                new ServeOptions { ShutdownLinger = TimeSpan.FromMinutes(5) });
            for (int i = 0; i < 32; i++)
            {
                await host.Client.SendWriteAsync((ulong)(i * BlockSize), Block(i + 1), cookie: (ulong)i);
            }
            await host.Shutdown.CancelAsync();
            await host.Client.SendWriteAsync(0, Block(0xEE), cookie: 99);
            Dictionary<ulong, RawReply> replies = await ReadRepliesAsync(host.Client, 33);
            Assert.Equal(108u, (uint)replies[99].Error);
            // Written before the shutdown: answered, either way round (read before or after the token fired is up to the server).
            Assert.All(Enumerable.Range(0, 32), i => Assert.Contains(replies[(ulong)i].Error, new[] { NbdError.None, NbdError.Shutdown }));
            await host.Client.SendDisconnectAsync();
            await host.ServerFinishedAsync();

            byte[] image = await File.ReadAllBytesAsync(path);
            for (int i = 0; i < 32; i++)
            {
                byte[] expected = replies[(ulong)i].Error == NbdError.None ? Block(i + 1) : new byte[BlockSize];
                Assert.Equal(expected, image.AsSpan(i * BlockSize, BlockSize).ToArray());
            }
        }
    }

    internal static byte[] Block(int fill)
    {
        var block = new byte[BlockSize];
        Array.Fill(block, (byte)fill);
        block[0] = (byte)(fill >> 8);
        return block;
    }

    internal static byte[] ReadBack(IBlockDevice device, long offset)
    {
        var data = new byte[BlockSize];
        device.ReadAsync(offset, data).AsTask().GetAwaiter().GetResult();
        return data;
    }

    /// <summary>Reads <paramref name="count"/> whole replies (none of them carries data) keyed by cookie.</summary>
    internal static async Task<Dictionary<ulong, RawReply>> ReadRepliesAsync(RawNbdClient client, int count)
    {
        var replies = new Dictionary<ulong, RawReply>();
        while (replies.Count < count)
        {
            IReadOnlyList<RawReply> chunks = await client.ReadFullReplyAsync();
            Assert.True(replies.TryAdd(chunks[^1].Cookie, chunks[^1]), $"two replies for cookie {chunks[^1].Cookie}");
        }
        return replies;
    }
}

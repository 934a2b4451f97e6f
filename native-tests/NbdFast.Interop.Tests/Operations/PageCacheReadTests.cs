using NbdFast.Protocol;
using NbdFast.Tests.Support;
using NbdFast.Interop.Tests.Support;

namespace NbdFast.Interop.Tests.Operations;

/// <summary>
/// Reads of a cached file export are sent from a shared mapping of the page cache on the io_uring engine: they
/// must see the file as it is, and a file that shrinks under replies waiting to be sent must not break the
/// connection (the pages those replies point at are gone).
/// </summary>
public sealed class PageCacheReadTests
{
    private const int MiB = 1024 * 1024;

    [Theory(Timeout = 60_000)]
    [InlineData(Engine.Auto)]
    [InlineData(Engine.Sockets)]
    public async Task AWriteToTheFileOutsideTheServer_IsWhatTheNextReadReturns(Engine engine)
    {
        using var dir = new TempDirectory();
        byte[] before = dir.WriteRandom("disk.img", MiB, seed: 1);
        using NbdfastProcess server = await Transport.Unix.StartAsync(engine, dir.File("disk.img"));
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server);
        await using (client)
        {
            Assert.Equal(before[4096..(4096 + 65536)], await ReadAsync(client, 4096, 65536));

            byte[] after = new byte[65536];
            new Random(2).NextBytes(after);
            using (var file = new FileStream(dir.File("disk.img"), FileMode.Open, FileAccess.Write))
            {
                RandomAccess.Write(file.SafeFileHandle, after, 4096);
            }
            Assert.Equal(after, await ReadAsync(client, 4096, 65536));
            await client.SendDisconnectAsync();
        }
    }

    /// <summary>
    /// Sixteen 1 MiB reads are queued and no reply is read for a second, so most replies wait behind a full
    /// socket; then the file is truncated to nothing. Every reply must still arrive whole, with the file's bytes
    /// up to some point and zeroes after it (past the end of a shrunken file reads as zeroes), and the
    /// connection must go on serving. The socket engine reads each reply's data before it queues the reply, so
    /// there the truncation comes too late to show; io_uring sends from the page cache, and most replies must
    /// show it.
    /// </summary>
    [Theory(Timeout = 60_000)]
    [InlineData(Engine.Uring)]
    [InlineData(Engine.Sockets)]
    public async Task TheFileShrinkingUnderQueuedReplies_GivesZeroes_AndTheConnectionGoesOn(Engine engine)
    {
        const int Reads = 16;
        using var dir = new TempDirectory();
        byte[] content = dir.WriteRandom("disk.img", Reads * MiB, seed: 3);
        using NbdfastProcess server = await Transport.Unix.StartAsync(engine, dir.File("disk.img"));
        (RawNbdClient client, _) = await RawClients.NegotiateAsync(server);
        await using (client)
        {
            await RawClients.QueueReadsThenPauseAsync(client, Reads, MiB);
            File.WriteAllBytes(dir.File("disk.img"), []);

            int zeroedReplies = 0;
            for (int i = 0; i < Reads; i++)
            {
                RawReply reply = await client.ReadReplyAsync(MiB);
                Assert.True(reply.IsSimple && reply.Error == NbdError.None, $"reply to {reply.Cookie}: {reply.Error}\n--- server ---\n{server.Stderr}");
                int start = (int)reply.Cookie * MiB;
                int kept = reply.Payload.AsSpan().CommonPrefixLength(content.AsSpan(start, MiB));
                Assert.True(reply.Payload.AsSpan(kept).IndexOfAnyExcept((byte)0) < 0,
                    $"reply {reply.Cookie}: after the file's first {kept} bytes, something other than zeroes");
                zeroedReplies += kept < MiB ? 1 : 0;
            }
            if (engine == Engine.Uring)
            {
                // The socket holds far less than 16 MiB, so most replies were still waiting when the file shrank.
                Assert.True(zeroedReplies >= Reads / 2, $"only {zeroedReplies} replies saw the truncation");
            }

            Assert.Equal(new byte[65536], await ReadAsync(client, 0, 65536));
            await client.SendDisconnectAsync();
        }
        Assert.False(server.HasExited, server.Stderr);
    }

    private static async Task<byte[]> ReadAsync(RawNbdClient client, ulong offset, int length)
    {
        await client.SendRequestAsync(NbdCommand.Read, offset, (ulong)length, cookie: 0x5EAD);
        RawReply reply = await client.ReadReplyAsync(length);
        Assert.True(reply.IsSimple && reply.Error == NbdError.None, $"read at {offset}: {reply.Error}");
        return reply.Payload;
    }
}

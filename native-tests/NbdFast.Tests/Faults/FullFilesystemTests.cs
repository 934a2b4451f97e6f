using NbdFast.Devices;
using NbdFast.Protocol;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Faults;

/// <summary>
/// reliability.md §(c) 2 and 5 with a real filesystem: a sparse 16 MiB file on a 2 MiB tmpfs (mounted by the
/// test; we run as root), served by <see cref="FileDevice"/> on both transports (io_uring submits the writes
/// on its ring). Writing until the filesystem is full must end in NBD_ENOSPC (the kernel first accepts part
/// of the last chunk, a short write the server must not acknowledge), every acknowledged write must read back, and the
/// server must keep serving.
/// </summary>
public sealed class FullFilesystemTests
{
    private const int Timeout = 120_000;
    /// <summary>12 pages: 2 MiB is not a multiple of it, so the last write that fits only partly comes back short.</summary>
    private const int Chunk = 48 * 1024;
    private const long FileSize = 16L << 20;

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task WritesUntilTheFilesystemIsFull_GetEnospcAndAcknowledgedDataSurvives(Transport transport)
    {
        using var mountPoint = new TempDirectory("nbdfast-tmpfs-");
        await ExternalTool.RunCheckedAsync("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", mountPoint.FullPath]);
        try
        {
            string path = Path.Combine(mountPoint.FullPath, "disk.img");
            using (var image = new FileStream(path, FileMode.CreateNew))
            {
                image.SetLength(FileSize);   // sparse: far more than the filesystem can hold
            }
            FileDevice device = FileDevice.Open(path);
            await using (device)
            {
                await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);
                await FillAndCheckAsync(server);
                await server.AssertNoErrorsAsync();
            }
        }
        finally
        {
            await ExternalTool.RunCheckedAsync("umount", ["-l", mountPoint.FullPath]);
        }
    }

    private static async Task FillAndCheckAsync(InProcessServer server)
    {
        RawNbdClient client = await FaultHost.NegotiateAsync(server);
        int acknowledged = 0;
        NbdError refusal = NbdError.None;
        for (; acknowledged < FileSize / Chunk; acknowledged++)
        {
            ulong cookie = (ulong)acknowledged;
            await client.SendWriteAsync(cookie * Chunk, ChunkData(acknowledged), cookie);
            RawReply reply = await client.ReadReplyAsync();
            Assert.Equal(cookie, reply.Cookie);
            if (reply.Error != NbdError.None)
            {
                refusal = reply.Error;
                break;
            }
        }
        Assert.Equal(NbdError.NoSpace, refusal);
        Assert.InRange(acknowledged, 8, (2 << 20) / Chunk);   // most of the 2 MiB went in before the refusal

        for (int i = 0; i < acknowledged; i++)
        {
            ulong offset = (ulong)i * Chunk;
            await client.SendRequestAsync(NbdCommand.Read, offset, Chunk, cookie: 10_000 + (ulong)i);
            byte[] stored = await client.AssertReadReplyAsync(10_000 + (ulong)i, offset, Chunk);
            Assert.True(stored.AsSpan().SequenceEqual(ChunkData(i)), $"acknowledged chunk {i} did not read back");
        }

        // Still serving: overwriting space already allocated works, so do FLUSH and reads of holes.
        await client.SendWriteAsync(0, ChunkData(-1), cookie: 20_000);
        await client.AssertSuccessReplyAsync(20_000);
        await client.SendRequestAsync(NbdCommand.Flush, 0, 0, cookie: 20_001);
        await client.AssertSuccessReplyAsync(20_001);
        await client.SendRequestAsync(NbdCommand.Read, 0, Chunk, cookie: 20_002);
        Assert.Equal(ChunkData(-1), await client.AssertReadReplyAsync(20_002, 0, Chunk));
        await client.SendRequestAsync(NbdCommand.Read, (ulong)FileSize - Chunk, Chunk, cookie: 20_003);
        Assert.Equal(new byte[Chunk], await client.AssertReadReplyAsync(20_003, (ulong)FileSize - Chunk, Chunk));
        await FaultHost.DisconnectAsync(client);

        RawNbdClient next = await FaultHost.NegotiateAsync(server);
        await next.SendRequestAsync(NbdCommand.Read, Chunk, Chunk, cookie: 1);
        Assert.Equal(ChunkData(1), await next.AssertReadReplyAsync(1, Chunk, Chunk));
        await FaultHost.DisconnectAsync(next);
    }

    private static byte[] ChunkData(int index)
    {
        byte[] data = new byte[Chunk];
        new Random(index).NextBytes(data);
        return data;
    }
}

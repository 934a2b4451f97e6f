using NbdFast.Devices;
using NbdFast.IO.Uring;
using NbdFast.Protocol;
using NbdFast.Tests.Faults;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Uring;

/// <summary>Runs alone: one of its tests counts the process's open descriptors (/proc/self/fd).</summary>
[CollectionDefinition(nameof(LargeFileWriteCollection), DisableParallelization = true)]
public sealed class LargeFileWriteCollection;

/// <summary>
/// Large WRITEs (up to the 32 MiB maximum) to a file export on io_uring, over TCP and unix sockets: the bytes
/// land exactly where addressed when the payload arrives in pieces, FUA and pipelining hold, a full filesystem
/// fails only the request that hit it without losing framing, and clients dropped mid-payload apply nothing
/// and leave no descriptor behind. Writes that run inline on the reactor (small ones; over TCP, up to 2 MiB)
/// keep the same promises, also while slow ones send a connection's writes back to io_uring's workers.
/// </summary>
[Collection(nameof(LargeFileWriteCollection))]
public sealed class LargeFileWriteTests
{
    private const int Timeout = 120_000;
    private const long FileSize = 96L << 20;

    public static TheoryData<bool> Sockets => new() { false, true };

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Sockets))]
    public async Task LargeWritesLandExactlyWhereAddressed(bool unixSocket)
    {
        using var directory = new TempDirectory();
        string path = CreateSparseFile(directory, FileSize);
        await using var export = FileExport.Serve(path, unixSocket);
        InProcessServer server = export.Server;
        RawNbdClient client = await FaultHost.NegotiateAsync(server);
        (long Offset, int Length, int Pieces)[] writes =
        [
            (1, 1 << 20, 1),
            ((2 << 20) + 7, (5 << 20) + 13, 7),
            (40L << 20, 300_000, 3),
            ((50L << 20) - 3, (32 << 20) - 1, 5),
        ];
        ulong cookie = 1;
        foreach ((long offset, int length, int pieces) in writes)
        {
            byte[] payload = FaultHost.Pattern(offset, length, salt: cookie);
            NbdCommandFlags flags = cookie % 2 == 0 ? NbdCommandFlags.Fua : NbdCommandFlags.None;
            await SendInPiecesAsync(client, client.EncodeRequest((ushort)NbdCommand.Write, (ulong)offset, (ulong)length, cookie, flags), payload, pieces);
            await client.AssertSuccessReplyAsync(cookie);

            // The file itself holds the payload, and the bytes just outside it are still zero.
            byte[] window = ReadFile(path, offset - 1, length + 2);
            int differs = payload.AsSpan().CommonPrefixLength(window.AsSpan(1, length));
            Assert.True(differs == length, $"write {cookie} ({length} bytes at {offset}) differs in the file from byte {differs}");
            Assert.True(window[0] == 0 && window[^1] == 0, $"write {cookie} spilled outside its range: {window[0]} before, {window[^1]} after");
            cookie++;
        }
        await FaultHost.DisconnectAsync(client);
        await FaultHost.AssertReleasedAsync(server);
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Sockets))]
    public async Task PipelinedLargeWritesAllLand(bool unixSocket)
    {
        using var directory = new TempDirectory();
        string path = CreateSparseFile(directory, FileSize);
        await using var export = FileExport.Serve(path, unixSocket);
        InProcessServer server = export.Server;
        RawNbdClient client = await FaultHost.NegotiateAsync(server);
        const int size = 700_001;
        const int count = 24;
        var stream = new MemoryStream();
        for (int i = 0; i < count; i++)
        {
            long offset = 4097 + (long)i * size;
            stream.Write(client.EncodeRequest((ushort)NbdCommand.Write, (ulong)offset, size, (ulong)i + 1, payload: FaultHost.Pattern(offset, size, salt: 77)));
        }
        await client.Stream.WriteAsync(stream.ToArray());
        var answered = new HashSet<ulong>();
        for (int i = 0; i < count; i++)
        {
            RawReply reply = await client.ReadReplyAsync();
            Assert.Equal(NbdError.None, reply.Error);
            Assert.True(answered.Add(reply.Cookie));
        }
        for (int i = 0; i < count; i++)
        {
            long offset = 4097 + (long)i * size;
            Assert.True(FaultHost.Pattern(offset, size, salt: 77).AsSpan().SequenceEqual(ReadFile(path, offset, size)), $"pipelined write {i} did not land");
        }
        await FaultHost.DisconnectAsync(client);
        await FaultHost.AssertReleasedAsync(server);
    }

    [Fact(Timeout = Timeout)]
    public async Task ClientsDroppedMidPayloadApplyNothingAndLeaveNoDescriptorBehind()
    {
        using var directory = new TempDirectory();
        string path = CreateSparseFile(directory, FileSize);
        await using var export = FileExport.Serve(path, true);
        InProcessServer server = export.Server;
        RawNbdClient survivor = await FaultHost.NegotiateAsync(server);
        byte[] before = FaultHost.Pattern(1 << 20, 2 << 20, salt: 6);
        await survivor.SendWriteAsync(1 << 20, before, cookie: 7);
        await survivor.AssertSuccessReplyAsync(7);
        int descriptorsBefore = Directory.GetFiles("/proc/self/fd").Length;
        for (int round = 0; round < 16; round++)
        {
            RawNbdClient dropped = await FaultHost.NegotiateAsync(server);
            byte[] header = dropped.EncodeRequest((ushort)NbdCommand.Write, 1 << 20, 2 << 20, 1);
            await dropped.Stream.WriteAsync(header);
            await dropped.Stream.WriteAsync(new byte[400_000 + round * 30_000]);
            await Task.Delay(round % 3);
            await FaultHost.ResetAsync(dropped);
        }
        // None of the cut-short payloads was applied.
        await survivor.SendRequestAsync(NbdCommand.Read, 1 << 20, 2 << 20, cookie: 8);
        byte[] stored = await survivor.AssertReadReplyAsync(8, 1 << 20, 2 << 20);
        Assert.True(before.AsSpan().SequenceEqual(stored), "a write whose payload was cut short was applied");

        // The survivor still writes through the same path and reads it back.
        byte[] payload = FaultHost.Pattern(8L << 20, 1 << 20, salt: 5);
        await survivor.SendWriteAsync(8L << 20, payload, cookie: 9);
        await survivor.AssertSuccessReplyAsync(9);
        await survivor.SendRequestAsync(NbdCommand.Read, 8L << 20, 1 << 20, cookie: 10);
        Assert.Equal(payload, await survivor.AssertReadReplyAsync(10, 8L << 20, 1 << 20));
        await FaultHost.DisconnectAsync(survivor);
        await FaultHost.AssertReleasedAsync(server);
        // Every dropped connection's socket is closed again (a few descriptors of slack for the runtime).
        int descriptorsAfter = Directory.GetFiles("/proc/self/fd").Length;
        Assert.InRange(descriptorsAfter, 0, descriptorsBefore + 4);
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Sockets))]
    public Task FullFilesystemFailsTheWriteAndKeepsFraming(bool unixSocket) =>
        FillUntilRefusedAsync("3m", 64L << 20, (1 << 20) + 12_345, maxWrites: 20, salt: 3, unixSocket, async (client, path, size, acknowledged) =>
        {
            Assert.InRange(acknowledged, 1, 2);
            // Framing held: the refused payload was consumed, so the next requests parse and succeed.
            for (int i = 0; i < acknowledged; i++)
            {
                long offset = (long)i * size;
                await client.SendRequestAsync((ushort)NbdCommand.Read, (ulong)offset, (ulong)size, cookie: 100 + (ulong)i);
                Assert.Equal(FaultHost.Pattern(offset, size, salt: 3), await client.AssertReadReplyAsync(100 + (ulong)i, (ulong)offset, size));
            }
            byte[] overwrite = FaultHost.Pattern(0, size, salt: 4);
            await client.SendWriteAsync(0, overwrite, cookie: 200, flags: NbdCommandFlags.Fua);
            await client.AssertSuccessReplyAsync(200);
            await client.SendRequestAsync((ushort)NbdCommand.Read, 0, (ulong)size, cookie: 201);
            Assert.Equal(overwrite, await client.AssertReadReplyAsync(201, 0, size));
        });

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Sockets))]
    public Task SmallWritesOnAFullFilesystemFailOnlyThemselves(bool unixSocket) =>
        // 4 KiB writes run inline on the reactor (pwrite); their errors must reach just that request too.
        FillUntilRefusedAsync("1m", 8L << 20, 4096, maxWrites: 1024, salt: 5, unixSocket, async (client, path, size, acknowledged) =>
        {
            Assert.InRange(acknowledged, 200, 256);
            for (int i = 0; i < acknowledged; i += 37)
            {
                long offset = (long)i * size;
                await client.SendRequestAsync((ushort)NbdCommand.Read, (ulong)offset, (ulong)size, cookie: 5000 + (ulong)i);
                Assert.Equal(FaultHost.Pattern(offset, size, salt: 5), await client.AssertReadReplyAsync(5000 + (ulong)i, (ulong)offset, size));
            }
            byte[] overwrite = FaultHost.Pattern(0, size, salt: 6);
            await client.SendWriteAsync(0, overwrite, cookie: 9000);
            await client.AssertSuccessReplyAsync(9000);
            Assert.Equal(overwrite, ReadFile(path, 0, size));
        });

    /// <summary>
    /// Serves a sparse file on a fresh tmpfs of <paramref name="tmpfsSize"/> and writes <paramref name="size"/>-byte
    /// blocks from offset 0, one at a time, until one is refused: that refusal must be ENOSPC. Then
    /// <paramref name="afterRefusal"/> checks the connection with the number of writes acknowledged before it.
    /// </summary>
    private static async Task FillUntilRefusedAsync(string tmpfsSize, long fileSize, int size, int maxWrites, ulong salt, bool unixSocket,
        Func<RawNbdClient, string, int, int, Task> afterRefusal)
    {
        using var mountPoint = new TempDirectory("nbdfast-tmpfs-");
        await ExternalTool.RunCheckedAsync("mount", ["-t", "tmpfs", "-o", $"size={tmpfsSize}", "tmpfs", mountPoint.FullPath]);
        try
        {
            string path = CreateSparseFile(mountPoint, fileSize);
            await using var export = FileExport.Serve(path, unixSocket);
            RawNbdClient client = await FaultHost.NegotiateAsync(export.Server);
            int acknowledged = 0;
            NbdError refusal = NbdError.None;
            for (; acknowledged < maxWrites; acknowledged++)
            {
                long offset = (long)acknowledged * size;
                await client.SendWriteAsync((ulong)offset, FaultHost.Pattern(offset, size, salt), cookie: (ulong)acknowledged + 1);
                RawReply reply = await client.ReadReplyAsync();
                Assert.Equal((ulong)acknowledged + 1, reply.Cookie);
                if (reply.Error != NbdError.None)
                {
                    refusal = reply.Error;
                    break;
                }
            }
            Assert.Equal(NbdError.NoSpace, refusal);
            await afterRefusal(client, path, size, acknowledged);
            await FaultHost.DisconnectAsync(client);
            await FaultHost.AssertReleasedAsync(export.Server);
        }
        finally
        {
            await ExternalTool.RunCheckedAsync("umount", ["-l", mountPoint.FullPath]);
        }
    }

    [Theory(Timeout = Timeout)]
    [MemberData(nameof(Sockets))]
    public async Task WritesLandWhileSlowInlineWritesSwitchToTheWorkers(bool unixSocket)
    {
        // With every inline write counted as slow, each connection alternates between one inline write and a
        // pause on io_uring's workers; pipelined small, large and FUA writes must all land exactly.
        long saved = UringConnection.SlowInlineWrite;
        UringConnection.SlowInlineWrite = -1;
        try
        {
            using var directory = new TempDirectory();
            string path = CreateSparseFile(directory, FileSize);
            await using var export = FileExport.Serve(path, unixSocket);
            RawNbdClient client = await FaultHost.NegotiateAsync(export.Server);
            var random = new Random(11);
            var writes = new List<(long Offset, byte[] Data)>();
            for (int i = 0; i < 120; i++)
            {
                int size = i % 10 == 9 ? 200_000 : 512 * random.Next(1, 65);
                long offset = (long)i * (256 << 10) + random.Next(0, 4096);
                writes.Add((offset, FaultHost.Pattern(offset, size, salt: (ulong)i)));
            }
            for (int i = 0; i < writes.Count; i++)
            {
                NbdCommandFlags flags = i % 7 == 3 ? NbdCommandFlags.Fua : NbdCommandFlags.None;
                await client.SendWriteAsync((ulong)writes[i].Offset, writes[i].Data, cookie: (ulong)i + 1, flags: flags);
            }
            var replied = new HashSet<ulong>();
            for (int i = 0; i < writes.Count; i++)
            {
                RawReply reply = await client.ReadReplyAsync();
                Assert.Equal(NbdError.None, reply.Error);
                Assert.True(replied.Add(reply.Cookie), $"cookie {reply.Cookie} answered twice");
            }
            foreach ((long offset, byte[] data) in writes)
            {
                Assert.Equal(data, ReadFile(path, offset, data.Length));
            }
            await FaultHost.DisconnectAsync(client);
            await FaultHost.AssertReleasedAsync(export.Server);
        }
        finally
        {
            UringConnection.SlowInlineWrite = saved;
        }
    }

    /// <summary>A file served read-write through the io_uring transport; disposing stops the server, then closes the file.</summary>
    private sealed class FileExport : IAsyncDisposable
    {
        private readonly FileDevice _device;

        private FileExport(FileDevice device, InProcessServer server)
        {
            _device = device;
            Server = server;
        }

        public InProcessServer Server { get; }

        public static FileExport Serve(string path, bool unixSocket)
        {
            FileDevice device = FileDevice.Open(path);
            var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: Transport.Uring);
            return new FileExport(device, server);
        }

        public async ValueTask DisposeAsync()
        {
            await Server.DisposeAsync();
            await _device.DisposeAsync();
        }
    }

    private static string CreateSparseFile(TempDirectory directory, long size)
    {
        string path = directory.File("disk.img");
        using var image = new FileStream(path, FileMode.CreateNew);
        image.SetLength(size);
        return path;
    }

    private static byte[] ReadFile(string path, long offset, int length)
    {
        byte[] data = new byte[length];
        using var handle = File.OpenHandle(path);
        Assert.Equal(length, RandomAccess.Read(handle, data, offset));
        return data;
    }

    /// <summary>The header with the first piece, then the rest with pauses, so the payload arrives in parts.</summary>
    private static async Task SendInPiecesAsync(RawNbdClient client, byte[] header, byte[] payload, int pieces)
    {
        int piece = (payload.Length + pieces - 1) / pieces;
        byte[] first = [.. header, .. payload.AsSpan(0, Math.Min(piece, payload.Length))];
        await client.Stream.WriteAsync(first);
        for (int sent = piece; sent < payload.Length; sent += piece)
        {
            await Task.Delay(3);
            await client.Stream.WriteAsync(payload.AsMemory(sent, Math.Min(piece, payload.Length - sent)));
        }
    }
}

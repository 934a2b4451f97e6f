using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// Two python3-libnbd connections to the same export: both see NBD_FLAG_CAN_MULTI_CONN, and what one writes
/// and flushes the other reads, both ways, also while both keep requests in flight.
/// </summary>
public sealed class MultiConnClientTests
{
    private const int TestTimeout = 120_000;
    private const int Size = 8 * 1024 * 1024;

    private const string Script = """
        import json, random, sys, nbd
        uri = sys.argv[1]
        a, b = nbd.NBD(), nbd.NBD()
        a.connect_uri(uri)
        b.connect_uri(uri)
        out = {"a_multi_conn": a.can_multi_conn(), "b_multi_conn": b.can_multi_conn(), "a_flush": a.can_flush()}
        rng = random.Random(3)
        size = a.get_size()
        assert b.get_size() == size
        def roundtrip(writer, reader, offset, length, what):
            data = rng.randbytes(length)
            writer.pwrite(data, offset)
            writer.flush()
            got = reader.pread(length, offset)
            assert got == data, "%s: the other connection read different bytes at %d+%d" % (what, offset, length)
        roundtrip(a, b, 0, 4096, "A -> B")
        roundtrip(b, a, 0, 4096, "B -> A (overwriting)")
        roundtrip(a, b, 1000001, 300000, "A -> B unaligned")
        # Interleaved: each connection keeps 16 writes in flight on its own half, then both flush and read the other half.
        half = size // 2
        datas = {}
        cookies = {a: [], b: []}
        for i in range(16):
            for h, base in ((a, 0), (b, half)):
                offset = base + i * 65536 + 7
                data = rng.randbytes(60000)
                datas[offset] = data
                cookies[h].append(h.aio_pwrite(nbd.Buffer.from_bytearray(bytearray(data)), offset))
        for h in (a, b):
            while h.aio_in_flight() > 0:
                h.poll(-1)
            for c in cookies[h]:
                assert h.aio_command_completed(c)
            h.flush()
        for offset, data in datas.items():
            reader = b if offset < half else a
            assert reader.pread(len(data), offset) == data, "interleaved write at %d not visible on the other connection" % offset
        out["checked"] = len(datas) + 3
        a.shutdown()
        b.shutdown()
        print(json.dumps(out))
        """;


    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task WriteAndFlushOnOne_ReadOnOther(Transport transport, bool fileDevice)
    {
        using var temp = new TempDirectory();
        IBlockDevice device = fileDevice
            ? FileDevice.Open(temp.CreateRandomFile("backing.img", Size, seed: 81))
            : new MemoryDevice(Size);
        await using (device)
        {
            await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

            JsonElement output = await LibnbdPython.RunJsonAsync(Script, server.Uri);

            string describe = output.GetRawText();
            Assert.True(output.GetProperty("a_multi_conn").GetBoolean(), describe);
            Assert.True(output.GetProperty("b_multi_conn").GetBoolean(), describe);
            Assert.True(output.GetProperty("a_flush").GetBoolean(), describe);
            Assert.Equal(35, output.GetProperty("checked").GetInt32());
            IReadOnlyList<ServerConnection> connections = await server.AssertNoErrorsAsync();
            Assert.Equal(2, connections.Count);
        }
    }
}

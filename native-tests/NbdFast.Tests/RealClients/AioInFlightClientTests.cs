using System.Globalization;
using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// python3-libnbd keeping 64 asynchronous requests in flight on one connection: writes and reads of random
/// lengths at random offsets, mixed, completed in whatever order the server answers them.
/// </summary>
public sealed class AioInFlightClientTests
{
    private const int TestTimeout = 120_000;
    private const int Size = 16 * 1024 * 1024;

    // Requests in flight never overlap each other, so the model stays exact whatever order the server completes
    // them in: a write updates the model when issued, a read is checked against the model when it completes.
    private const string AioScript = """
        import json, random, sys, nbd
        uri, seed, initial_path, model_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
        DEPTH, TOTAL = 64, 1600
        h = nbd.NBD()
        h.connect_uri(uri)
        size = h.get_size()
        with open(initial_path, "rb") as f:
            model = bytearray(f.read())
        assert len(model) == size, (len(model), size)
        rng = random.Random(seed)
        in_flight = {}   # cookie -> (kind, offset, length, buffer)
        stats = {"writes": 0, "reads": 0, "fua_writes": 0, "peak_in_flight": 0, "bytes_read": 0, "bytes_written": 0,
                 "out_of_order": 0}  # out_of_order: completions seen while an older request was still pending
        issue_order = []
        def overlaps(offset, length):
            return any(o < offset + length and offset < o + n for (_, o, n, _) in in_flight.values())
        def issue():
            while True:
                length = rng.randint(1, 64 * 1024) if rng.random() < 0.7 else rng.randint(1, 1024)
                offset = rng.randint(0, size - length)
                if not overlaps(offset, length):
                    break
            if rng.random() < 0.5:
                data = rng.randbytes(length)
                buf = nbd.Buffer.from_bytearray(bytearray(data))
                flags = nbd.CMD_FLAG_FUA if rng.random() < 0.1 else 0
                cookie = h.aio_pwrite(buf, offset, flags=flags)
                model[offset:offset + length] = data
                in_flight[cookie] = ("w", offset, length, buf)
                stats["writes"] += 1
                stats["fua_writes"] += 1 if flags else 0
                stats["bytes_written"] += length
            else:
                buf = nbd.Buffer(length)
                cookie = h.aio_pread(buf, offset)
                in_flight[cookie] = ("r", offset, length, buf)
                stats["reads"] += 1
            issue_order.append(cookie)
        issued = 0
        while issued < TOTAL or in_flight:
            while issued < TOTAL and len(in_flight) < DEPTH:
                issue()
                issued += 1
            stats["peak_in_flight"] = max(stats["peak_in_flight"], h.aio_in_flight())
            h.poll(-1)
            oldest = min(in_flight) if in_flight else None
            for cookie in list(in_flight):
                if h.aio_command_completed(cookie):
                    kind, offset, length, buf = in_flight.pop(cookie)
                    if cookie != oldest and oldest in in_flight:
                        stats["out_of_order"] += 1
                    if kind == "r":
                        got = bytes(buf.to_bytearray())
                        want = bytes(model[offset:offset + length])
                        if got != want:
                            bad = next(i for i in range(length) if got[i] != want[i])
                            raise AssertionError("aio read %d+%d: mismatch at %d: got %02x want %02x" % (offset, length, offset + bad, got[bad], want[bad]))
                        stats["bytes_read"] += length
        h.flush()
        step = 4 << 20
        for offset in range(0, size, step):
            got = h.pread(min(step, size - offset), offset)
            if got != bytes(model[offset:offset + len(got)]):
                raise AssertionError("final read at %d differs from the model" % offset)
        with open(model_path, "wb") as f:
            f.write(model)
        h.shutdown()
        print(json.dumps(stats))
        """;


    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task SixtyFourInFlight_MixedRandomReadsAndWrites_MatchModel(Transport transport, bool fileDevice)
    {
        int seed = 9000 + (transport == Transport.Uring ? 1 : 0) + (fileDevice ? 2 : 0);
        using var temp = new TempDirectory();
        string initialPath = temp.CreateRandomFile("initial.bin", Size, seed);
        string modelPath = temp.File("model.bin");
        IBlockDevice device;
        if (fileDevice)
        {
            File.Copy(initialPath, temp.File("backing.img"));
            device = FileDevice.Open(temp.File("backing.img"));
        }
        else
        {
            device = new MemoryDevice(Size);
            await device.WriteAsync(0, await File.ReadAllBytesAsync(initialPath), WriteFlags.None);
        }
        await using (device)
        {
            await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

            JsonElement stats = await LibnbdPython.RunJsonAsync(AioScript, server.Uri, seed.ToString(CultureInfo.InvariantCulture), initialPath, modelPath);

            string describe = stats.GetRawText();
            Assert.True(stats.GetProperty("writes").GetInt32() > 600, describe);
            Assert.True(stats.GetProperty("reads").GetInt32() > 600, describe);
            // libnbd had the whole queue depth issued at once (what the server saw of it depends on timing).
            Assert.True(stats.GetProperty("peak_in_flight").GetInt32() >= 64, describe);
            Assert.Single(await server.AssertNoErrorsAsync());
            await DeviceContents.AssertDeviceEqualsFileAsync(device, modelPath);
        }
    }
}

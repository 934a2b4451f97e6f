using System.Text.Json;
using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>
/// A python3-libnbd client that asks for structured replies and one that does not
/// (<c>set_request_structured_replies(False)</c>): the server honours the choice, and reads (of data, of holes,
/// of both, up to the maximum payload) and writes are correct either way.
/// </summary>
public sealed class ReplyStyleClientTests
{
    private const int TestTimeout = 120_000;
    private const int Size = 40 * 1024 * 1024;

    private const string Script = """
        import json, random, sys, nbd
        uri, structured, initial_path = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
        M = 1 << 20
        h = nbd.NBD()
        h.set_request_structured_replies(structured)
        h.add_meta_context("base:allocation")
        h.connect_uri(uri)
        out = {
            "requested": h.get_request_structured_replies(),
            "negotiated": h.get_structured_replies_negotiated(),
            "can_df": h.can_df(),
            "base_allocation": h.can_meta_context("base:allocation"),
            "max_payload": h.get_block_size(nbd.SIZE_MAXIMUM),
        }
        size = h.get_size()
        with open(initial_path, "rb") as f:
            model = bytearray(f.read())
        rng = random.Random(5 if structured else 6)
        def check(offset, length, what):
            got = h.pread(length, offset)
            want = bytes(model[offset:offset + length])
            if got != want:
                bad = next(i for i in range(length) if got[i] != want[i])
                raise AssertionError("%s: %d+%d differs at %d" % (what, offset, length, offset + bad))
        # The first 8 MiB hold data; the rest of the device starts as a hole.
        check(0, 4096, "data")
        check(20 * M, 4096, "hole")
        check(8 * M - 1000, 300000, "data then hole")
        check(0, out["max_payload"], "maximum payload")
        reads = 4
        for i in range(30):
            length = rng.randint(1, M)
            offset = rng.randint(0, size - length)
            if rng.random() < 0.5:
                data = rng.randbytes(length)
                h.pwrite(data, offset)
                model[offset:offset + length] = data
            check(offset, length, "random %d" % i)
            reads += 1
        step = 8 * M
        for offset in range(0, size, step):
            check(offset, min(step, size - offset), "final")
        h.shutdown()
        out["reads"] = reads
        print(json.dumps(out))
        """;


    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.BothByFlag), MemberType = typeof(Transports))]
    public async Task RequestedReplyStyle_IsNegotiated_AndDataIsCorrect(Transport transport, bool structured)
    {
        using var temp = new TempDirectory();
        byte[] initial = new byte[Size];
        new Random(structured ? 15 : 16).NextBytes(initial.AsSpan(0, 8 * 1024 * 1024));
        string initialPath = temp.File("initial.bin");
        await File.WriteAllBytesAsync(initialPath, initial);
        var device = new MemoryDevice(Size);
        await device.WriteAsync(0, initial.AsMemory(0, 8 * 1024 * 1024), WriteFlags.None);
        await using var server = InProcessServer.Start(device, readOnly: false, transport: transport);

        JsonElement output = await LibnbdPython.RunJsonAsync(Script, server.Uri, structured ? "1" : "0", initialPath);

        string describe = output.GetRawText();
        Assert.True(output.GetProperty("requested").GetBoolean() == structured, describe);
        Assert.True(output.GetProperty("negotiated").GetBoolean() == structured, describe);
        // DF and meta contexts exist only with structured replies.
        Assert.True(output.GetProperty("can_df").GetBoolean() == structured, describe);
        Assert.True(output.GetProperty("base_allocation").GetBoolean() == structured, describe);
        Assert.Equal(32 * 1024 * 1024, output.GetProperty("max_payload").GetInt64());
        ServerConnection connection = Assert.Single(await server.AssertNoErrorsAsync());
        Assert.Equal(structured, connection.StructuredReplies);
    }
}

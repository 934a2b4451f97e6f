using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.RealClients;

/// <summary>nbdcopy (libnbd; several connections, many requests in flight) against the library on a real socket.</summary>
public sealed class NbdCopyTests
{
    private const int TestTimeout = 180_000;

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.StreamsOnBothUringOnTcp), MemberType = typeof(Transports))]
    public async Task CopyIn_CopyOut_RoundTripsFile(Transport transport, bool unixSocket)
    {
        using var temp = new TempDirectory();
        string source = temp.File("source.img");
        byte[] expected = Images.CreateStriped(source, Images.Size64MiB, seed: (unixSocket ? 21 : 22) + (transport == Transport.Uring ? 100 : 0));
        var device = new MemoryDevice(Images.Size64MiB);
        await DeviceContents.FillRandomAsync(device, seed: 98);
        await using var server = InProcessServer.Start(device, readOnly: false, unixSocket: unixSocket, transport: transport);

        await ExternalTool.RunCheckedAsync("nbdcopy", ["--flush", source, server.Uri]);
        IReadOnlyList<ServerConnection> afterCopyIn = await server.AssertNoErrorsAsync();
        byte[] written = await DeviceContents.ReadAllAsync(device);
        DeviceContents.AssertEqual(expected, written, "device after nbdcopy in");
        // The export advertises multi-conn, so nbdcopy spreads the work over several connections.
        Assert.True(afterCopyIn.Count > 1, server.Describe());

        string copy = temp.File("copy.img");
        await ExternalTool.RunCheckedAsync("nbdcopy", [server.Uri, copy]);
        await DeviceContents.AssertFilesEqualAsync(source, copy);
        await server.AssertNoErrorsAsync();
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task TightInFlightBudget_MaxSizeRequestsOnManyConnections_StillCopies(Transport transport)
    {
        using var temp = new TempDirectory();
        string source = temp.File("source.img");
        byte[] expected = Images.CreateStriped(source, Images.Size64MiB, seed: 23);
        var device = new MemoryDevice(Images.Size64MiB);
        // Each request is larger than the byte budget, so the server must admit them one at a time.
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Device = device,
            ReadOnly = false,
            ServeOptions = new ServeOptions { MaxInFlightRequests = 2, MaxInFlightBytes = 1024 * 1024 },
            Transport = transport,
        });

        await ExternalTool.RunCheckedAsync("nbdcopy", ["--request-size=33554432", "--requests=16", "--connections=4", source, server.Uri]);
        string copy = temp.File("copy.img");
        await ExternalTool.RunCheckedAsync("nbdcopy", ["--request-size=33554432", "--requests=16", "--connections=4", server.Uri, copy]);

        await server.AssertNoErrorsAsync();
        byte[] written = await DeviceContents.ReadAllAsync(device);
        DeviceContents.AssertEqual(expected, written, "device after nbdcopy in");
        await DeviceContents.AssertFilesEqualAsync(source, copy);
    }

    [Theory(Timeout = TestTimeout)]
    [MemberData(nameof(Transports.Both), MemberType = typeof(Transports))]
    public async Task CopyBetweenTwoExports_OfSameServer(Transport transport)
    {
        var from = new MemoryDevice(32 * 1024 * 1024);
        var to = new MemoryDevice(32 * 1024 * 1024);
        byte[] expected = new byte[from.Size];
        new Random(8).NextBytes(expected.AsSpan(0, 8 * 1024 * 1024));
        new Random(9).NextBytes(expected.AsSpan(20 * 1024 * 1024, 3 * 1024 * 1024 + 17));
        await from.WriteAsync(0, expected, WriteFlags.None);
        await to.WriteAsync(0, Enumerable.Repeat((byte)0xee, (int)to.Size).ToArray(), WriteFlags.None);
        await using var server = InProcessServer.Start(new InProcessServerOptions
        {
            Offer = ["from", "to"],
            Resolver = (name, _) => ValueTask.FromResult(name switch
            {
                "from" => new NbdExport(from),
                "to" => new NbdExport(to, ReadOnly: false),
                _ => null,
            }),
            Transport = transport,
        });

        await ExternalTool.RunCheckedAsync("nbdcopy", [server.UriFor("from"), server.UriFor("to")]);

        await server.AssertNoErrorsAsync();
        byte[] copied = await DeviceContents.ReadAllAsync(to);
        DeviceContents.AssertEqual(expected, copied, "target export");
    }

    [Fact(Timeout = TestTimeout)]
    public async Task CopyIntoReadOnlyExport_Fails()
    {
        using var temp = new TempDirectory();
        string source = temp.CreateRandomFile("source.img", 1024 * 1024, seed: 4);
        var device = new MemoryDevice(1024 * 1024);
        await using var server = InProcessServer.Start(device, readOnly: true);

        ToolResult result = await ExternalTool.RunAsync("nbdcopy", [source, server.Uri]);

        result.EnsureFailure();
        await server.AssertNoErrorsAsync();
        Assert.Equal(0, device.CommittedBytes);
    }
}

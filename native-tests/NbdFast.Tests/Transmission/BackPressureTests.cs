using System.Diagnostics;
using NbdFast.Devices;
using NbdFast.Protocol;

namespace NbdFast.Tests.Transmission;

/// <summary>Runs alone: it measures the process's managed heap.</summary>
[CollectionDefinition(nameof(BackPressureCollection), DisableParallelization = true)]
public sealed class BackPressureCollection;

/// <summary>A client that floods requests and never reads replies must not make the server grow.</summary>
[Collection(nameof(BackPressureCollection))]
public class BackPressureTests
{
    private const int Requests = 20_000;
    private const int ReadLength = 1024 * 1024;
    private const int Batch = 100;
    private const long MaxGrowth = 512L * 1024 * 1024;

    [Fact]
    public async Task ServerStopsReadingFromAClientThatNeverReadsReplies()
    {
        var device = new MemoryDevice(64L * ReadLength);
        // Small kernel buffers, so the client's writes block as soon as the server stops reading.
        TransmissionServer server = await TransmissionServer.StartAsync(device, socketBufferSize: 16 * 1024);
        try
        {
            long before = GC.GetTotalMemory(forceFullCollection: true);
            var batch = new List<byte>();
            for (int i = 0; i < Batch; i++)
            {
                batch.AddRange(server.Client.EncodeRequest((ushort)NbdCommand.Read, (ulong)(i % 64) * ReadLength, ReadLength, cookie: (ulong)i));
            }
            byte[] bytes = batch.ToArray();

            int sent = 0;
            using var stop = new CancellationTokenSource();
            Task sender = Task.Run(async () =>
            {
                while (Volatile.Read(ref sent) < Requests)
                {
                    await server.Client.Stream.WriteAsync(bytes, stop.Token);
                    Interlocked.Add(ref sent, Batch);
                }
            });

            // Wait until the sender has made no progress for two seconds (or gave up, or finished).
            var clock = Stopwatch.StartNew();
            int last = -1;
            var stalledSince = Stopwatch.StartNew();
            while (clock.Elapsed < TimeSpan.FromSeconds(30) && !sender.IsCompleted && stalledSince.Elapsed < TimeSpan.FromSeconds(2))
            {
                await Task.Delay(100);
                int now = Volatile.Read(ref sent);
                if (now != last)
                {
                    last = now;
                    stalledSince.Restart();
                }
            }

            Assert.False(sender.IsCompleted, $"the client sent all {Volatile.Read(ref sent)} requests: the server kept reading (or the send failed: {sender.Exception?.InnerException?.Message})");
            Assert.True(Volatile.Read(ref sent) < Requests);
            long growth = GC.GetTotalMemory(forceFullCollection: true) - before;
            Assert.True(growth < MaxGrowth, $"the managed heap grew by {growth / (1024 * 1024)} MiB after {Volatile.Read(ref sent)} requests");
            Assert.False(server.Serving.IsCompleted);

            // Closing the client ends the session cleanly: ServeAsync returns without an exception.
            stop.Cancel();
            await server.Client.DisposeAsync();
            await server.StoppedAsync();
            await Assert.ThrowsAnyAsync<Exception>(() => sender);
        }
        finally
        {
            await server.DisposeAsync();
        }
    }
}

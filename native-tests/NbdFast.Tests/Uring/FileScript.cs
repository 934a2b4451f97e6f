using NbdFast.Devices;
using NbdFast.Tests.Support;

namespace NbdFast.Tests.Uring;

/// <summary>Serves a fresh zero-filled temp file on <see cref="NbdUringEngine"/> and runs a python3-libnbd script against it.</summary>
internal static class FileScript
{
    /// <summary>Runs <paramref name="script"/> (which prints {"ok": true}) with the export's URI; <paramref name="andThen"/> runs before the export goes.</summary>
    public static async Task RunAsync(NbdUringEngine engine, int fileBytes, string script, Func<UringServerHost, Task>? andThen = null)
    {
        string path = Path.Combine(Path.GetTempPath(), $"nbdfast-uring-{Guid.NewGuid():N}.img");
        await File.WriteAllBytesAsync(path, new byte[fileBytes]);
        try
        {
            await using FileDevice device = FileDevice.Open(path);
            await using var host = new UringServerHost(engine, device);
            var result = await LibnbdPython.RunJsonAsync(script, host.Uri);
            Assert.True(result.GetProperty("ok").GetBoolean());
            if (andThen is not null)
            {
                await andThen(host);
            }
        }
        finally
        {
            File.Delete(path);
        }
    }
}

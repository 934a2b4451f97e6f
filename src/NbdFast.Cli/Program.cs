using System.CommandLine;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using NbdFast;
using NbdFast.Cli;
using NbdFast.Devices;

var commandLine = new CommandLine();
ParseResult parsed = commandLine.Root.Parse(args);
if (parsed.Errors.Count > 0)
{
    Console.Error.WriteLine($"nbdfast: {parsed.Errors[0].Message} (try --help)");
    return 2;
}
if (parsed.Action is not null && parsed.CommandResult.Command == commandLine.Root && parsed.Action != commandLine.Root.Action)
{
    // --help or --version.
    return await parsed.InvokeAsync();
}

CliSettings settings;
try
{
    settings = commandLine.Bind(parsed);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"nbdfast: {e.Message}");
    return 2;
}

NbdTlsOptions? tls;
try
{
    tls = TlsLoader.Load(settings);
}
catch (UsageException e)
{
    Console.Error.WriteLine($"nbdfast: {e.Message}");
    return 2;
}

var log = new Log(settings.Verbosity);
IBlockDevice device;
try
{
    device = settings.MemorySize is long size
        ? new MemoryDevice(size)
        : FileDevice.Open(settings.File!, readOnly: !settings.Writable, direct: settings.Direct);
}
catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException)
{
    Console.Error.WriteLine($"nbdfast: {settings.File ?? "memory"}: {e.Message}");
    return 2;
}

NbdUringEngine? uring = null;
// TLS sessions run on the sockets transport (the reactor speaks clear text only), so no reactors then.
if (settings.Io != IoMode.Sockets && tls is null)
{
    uring = NbdUringEngine.TryCreate(settings.Threads, out string? reason);
    if (uring is null)
    {
        if (settings.Io == IoMode.Uring)
        {
            Console.Error.WriteLine($"nbdfast: --io uring: {reason}");
            await device.DisposeAsync();
            return 2;
        }
        Console.Error.WriteLine($"nbdfast: io_uring unavailable ({reason}); using the socket transport");
    }
}

List<Socket> listeners;
try
{
    listeners = Listeners.Open(settings);
}
catch (Exception e) when (e is SocketException or IOException or UnauthorizedAccessException or ArgumentException)
{
    Console.Error.WriteLine($"nbdfast: cannot listen: {e.Message}");
    uring?.Dispose();
    await device.DisposeAsync();
    return 2;
}

using var shutdown = new CancellationTokenSource();
void OnSignal(PosixSignalContext context)
{
    context.Cancel = true;
    shutdown.Cancel();
}
using PosixSignalRegistration sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

var export = new NbdExport(device, ReadOnly: !settings.Writable, settings.Description);
Console.Error.WriteLine($"nbdfast: serving {(settings.File ?? $"a {settings.MemorySize}-byte RAM disk")} " +
    $"{(settings.Writable ? "read-write" : "read-only")} as export '{settings.ExportName}' on {string.Join(", ", listeners.Select(Listeners.Describe))}" +
    $" ({(uring is null ? "sockets" : $"io_uring, {uring.Threads} reactor threads, {uring.Description}")}" +
    $"{(tls is null ? "" : tls.Mode == NbdTlsMode.Required ? "; TLS required" : "; TLS optional")})");

await new Server(settings, export, log, uring, tls).RunAsync(listeners, shutdown.Token);
uring?.Dispose();

if (settings.Writable)
{
    await device.FlushAsync();
}
await device.DisposeAsync();
if (settings.UnixSocket is string path)
{
    File.Delete(path);
}
return 0;

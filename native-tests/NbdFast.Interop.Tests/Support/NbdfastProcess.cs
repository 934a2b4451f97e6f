using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace NbdFast.Interop.Tests.Support;

/// <summary>
/// A running nbdfast server on a free loopback TCP port or a unix socket in a private temp directory.
/// Started once its "nbdfast: serving" line is on stderr; Dispose sends SIGTERM and waits for exit.
/// </summary>
public sealed class NbdfastProcess : IDisposable
{
    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(15);
    public static readonly TimeSpan StopTimeout = TimeSpan.FromSeconds(10);

    private readonly Process _process;
    private readonly StringBuilder _stderr = new();
    private readonly Lock _lock = new();
    private readonly TaskCompletionSource _serving = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly string? _tempDirectory;
    private readonly string _exportName;

    private NbdfastProcess(IReadOnlyList<string> arguments, int? port, string? socketPath, string? tempDirectory,
        IReadOnlyDictionary<string, string>? environment = null)
        : this([], arguments, port, socketPath, tempDirectory, environment)
    {
    }

    /// <param name="launcher">A program (and its arguments) that ends by exec'ing nbdfast, e.g. a socket activator.</param>
    private NbdfastProcess(IReadOnlyList<string> launcher, IReadOnlyList<string> arguments, int? port, string? socketPath, string? tempDirectory,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        Arguments = arguments;
        Port = port;
        SocketPath = socketPath;
        _tempDirectory = tempDirectory;
        _exportName = ExportNameIn(arguments);
        // Through env(1) so SIGINT is not inherited as ignored (as it is for background jobs of a
        // non-interactive shell, e.g. a CI script): the signal tests must not depend on how we were started.
        string[] variables = [.. (environment ?? new Dictionary<string, string>()).Select(v => $"{v.Key}={v.Value}")];
        _process = new Process { StartInfo = ToolEnvironment.StartInfo("/usr/bin/env", ["--default-signal=INT", .. variables, .. launcher, NbdfastBinary.Path, .. arguments]) };
        _process.ErrorDataReceived += (_, e) => OnStderrLine(e.Data);
        _process.OutputDataReceived += (_, _) => { };
        _process.Start();
        _process.StandardInput.Close();
        _process.BeginErrorReadLine();
        _process.BeginOutputReadLine();
    }

    public IReadOnlyList<string> Arguments { get; }

    public int? Port { get; }

    public string? SocketPath { get; }

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>The exit status, once the process has exited.</summary>
    public int? ExitCode => _process.HasExited ? _process.ExitCode : null;

    public string Stderr { get { lock (_lock) { return _stderr.ToString(); } } }

    /// <summary>The NBD URI of the export named by -e (or of <paramref name="exportName"/>).</summary>
    public string Uri(string? exportName = null)
    {
        string name = System.Uri.EscapeDataString(exportName ?? _exportName);
        return SocketPath is null
            ? $"nbd://127.0.0.1:{Port}/{name}"
            : $"nbd+unix:///{name}?socket={SocketPath}";
    }

    /// <summary>Starts nbdfast with <paramref name="arguments"/> plus <c>-b 127.0.0.1 -p FREE_PORT</c>.</summary>
    public static Task<NbdfastProcess> StartTcpAsync(params string[] arguments) => StartTcpAsync(new Dictionary<string, string>(), arguments);

    /// <summary>As <see cref="StartTcpAsync(string[])"/>, with extra environment variables for nbdfast.</summary>
    public static Task<NbdfastProcess> StartTcpAsync(IReadOnlyDictionary<string, string> environment, params string[] arguments) =>
        StartOnFreePortAsync(port => [.. arguments, "-b", "127.0.0.1", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture)], environment: environment);

    /// <summary>
    /// Starts nbdfast with the arguments <paramref name="arguments"/> makes for a free TCP port (free on 127.0.0.1
    /// and, where there is one, ::1), trying another port when a race took it; <see cref="Port"/> is that port.
    /// </summary>
    public static async Task<NbdfastProcess> StartOnFreePortAsync(Func<int, IReadOnlyList<string>> arguments, string? socketPath = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        for (int attempt = 1; ; attempt++)
        {
            int port = FreeTcpPort();
            var server = new NbdfastProcess(arguments(port), port, socketPath, null, environment);
            try
            {
                await server.WaitUntilServingAsync().ConfigureAwait(false);
                return server;
            }
            catch (InvalidOperationException) when (attempt < 5 && server.Stderr.Contains("cannot listen", StringComparison.Ordinal))
            {
                // Another process took the port between our probe and nbdfast's bind: try another.
                server.Dispose();
            }
            catch
            {
                server.Dispose();
                throw;
            }
        }
    }

    /// <summary>Starts nbdfast with <paramref name="arguments"/> plus <c>-U TEMPDIR/nbd.sock</c>.</summary>
    public static Task<NbdfastProcess> StartUnixAsync(params string[] arguments)
    {
        _ = NbdfastBinary.Path;   // fail on a missing binary before making a directory to leak
        string directory = CreateTempDirectory();
        string socketPath = Path.Combine(directory, "nbd.sock");
        return ServingAsync(new NbdfastProcess([.. arguments, "-U", socketPath], null, socketPath, directory));
    }

    /// <summary>Starts nbdfast with <paramref name="arguments"/> plus <c>-U SOCKETPATH</c> (the caller owns that path).</summary>
    public static Task<NbdfastProcess> StartUnixAtAsync(string socketPath, params string[] arguments) =>
        ServingAsync(new NbdfastProcess([.. arguments, "-U", socketPath], null, socketPath, null));

    /// <summary>
    /// Starts <c>LAUNCHER... nbdfast ARGUMENTS</c> where the launcher (a socket activator) exec's nbdfast in its own
    /// process, so <see cref="Pid"/> is nbdfast's. Does not wait for the "serving" line (an activator may start
    /// nbdfast only on the first connection): use <see cref="WaitForStderrAsync"/>.
    /// </summary>
    public static NbdfastProcess StartLaunched(IReadOnlyList<string> launcher, IReadOnlyList<string> arguments, int? port = null, string? socketPath = null) =>
        new(launcher, arguments, port, socketPath, null);

    /// <summary>Waits until a stderr line contains <paramref name="text"/>; throws (with the log) on timeout or exit.</summary>
    public async Task WaitForStderrAsync(string text, TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? StartTimeout;
        DateTime deadline = DateTime.UtcNow + limit;
        while (!Stderr.Contains(text, StringComparison.Ordinal))
        {
            if (DateTime.UtcNow > deadline || _process.HasExited)
            {
                // One last look: the line may have arrived together with the exit.
                await Task.Delay(100).ConfigureAwait(false);
                if (Stderr.Contains(text, StringComparison.Ordinal))
                {
                    return;
                }
                throw new TimeoutException(
                    $"'{text}' did not appear on nbdfast's stderr ({(_process.HasExited ? "it exited" : $"{limit.TotalSeconds} s timeout")})\n--- stderr ---\n{Stderr}");
            }
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    /// <summary>How many stderr lines contain <paramref name="text"/>.</summary>
    public int CountStderrLines(string text) =>
        Stderr.Split('\n').Count(line => line.Contains(text, StringComparison.Ordinal));

    /// <summary>Waits for nbdfast to exit by itself (a start-up mistake); returns the exit status, kills it and throws on timeout.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _process.Kill();
            await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw new TimeoutException($"nbdfast did not exit within {timeout.TotalSeconds} s (killed)\n--- stderr ---\n{Stderr}");
        }
        return _process.ExitCode;
    }

    /// <summary>Sends <paramref name="signal"/> and waits for exit; returns the exit status, throws if it does not exit in time.</summary>
    public async Task<int> StopAsync(int signal = Signals.SigTerm, TimeSpan? timeout = null)
    {
        TimeSpan limit = timeout ?? StopTimeout;
        if (!_process.HasExited)
        {
            Signals.Send(_process.Id, signal);
        }
        using var cts = new CancellationTokenSource(limit);
        try
        {
            await _process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            _process.Kill();
            await _process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            throw new TimeoutException(
                $"nbdfast did not exit within {limit.TotalSeconds} s of signal {signal} (killed)\n--- stderr ---\n{Stderr}");
        }
        return _process.ExitCode;
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                Signals.Send(_process.Id, Signals.SigTerm);
                if (!_process.WaitForExit(StopTimeout))
                {
                    _process.Kill();
                    _process.WaitForExit(5000);
                }
            }
        }
        catch (InvalidOperationException)
        {
        }
        _process.Dispose();
        if (_tempDirectory is null)
        {
            return;
        }
        try
        {
            Directory.Delete(_tempDirectory, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    private static async Task<NbdfastProcess> ServingAsync(NbdfastProcess server)
    {
        try
        {
            await server.WaitUntilServingAsync().ConfigureAwait(false);
            return server;
        }
        catch
        {
            server.Dispose();
            throw;
        }
    }

    private async Task WaitUntilServingAsync()
    {
        Task exited = _process.WaitForExitAsync();
        Task first = await Task.WhenAny(_serving.Task, exited, Task.Delay(StartTimeout)).ConfigureAwait(false);
        if (first == _serving.Task)
        {
            return;
        }
        string why = first == exited
            ? $"exited with status {_process.ExitCode} before serving"
            : $"printed no 'nbdfast: serving' line within {StartTimeout.TotalSeconds} s";
        throw new InvalidOperationException(
            $"{NbdfastBinary.Path} {string.Join(" ", Arguments)} {why}\n--- stderr ---\n{Stderr}");
    }

    private void OnStderrLine(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_lock)
        {
            _stderr.Append(line).Append('\n');
        }
        if (line.StartsWith("nbdfast: serving", StringComparison.Ordinal))
        {
            _serving.TrySetResult();
        }
    }

    private static string ExportNameIn(IReadOnlyList<string> arguments)
    {
        for (int i = 0; i < arguments.Count - 1; i++)
        {
            if (arguments[i] is "-e" or "--export-name")
            {
                return arguments[i + 1];
            }
        }
        return "";
    }

    /// <summary>A TCP port free on 127.0.0.1 and (when the host has IPv6 loopback) on ::1 at the moment of asking.</summary>
    public static int FreeTcpPort()
    {
        for (int attempt = 0; ; attempt++)
        {
            using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            int port = ((IPEndPoint)probe.LocalEndPoint!).Port;
            if (attempt >= 20 || !Socket.OSSupportsIPv6)
            {
                return port;
            }
            try
            {
                using var probe6 = new Socket(AddressFamily.InterNetworkV6, SocketType.Stream, ProtocolType.Tcp);
                probe6.Bind(new IPEndPoint(IPAddress.IPv6Loopback, port));
                return port;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                // Taken on ::1: ask again.
            }
            catch (SocketException)
            {
                return port; // no IPv6 loopback here
            }
        }
    }

    private static string CreateTempDirectory() => Directory.CreateTempSubdirectory("nbdfast-it-").FullName;
}

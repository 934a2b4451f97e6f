using System.Diagnostics;
using System.Text;

namespace NbdFast.Tests.Support;

/// <summary>What an external process did: its exit code and everything it printed.</summary>
public sealed record ToolResult(string FileName, IReadOnlyList<string> Arguments, int ExitCode, string StdOut, string StdErr, TimeSpan Elapsed)
{
    /// <summary>The process exited with status 0.</summary>
    public bool Succeeded => ExitCode == 0;

    /// <summary>Fails the test unless the process exited with status 0.</summary>
    public ToolResult EnsureSuccess()
    {
        if (ExitCode != 0)
        {
            throw new ExternalToolException($"{Describe()} failed.");
        }
        return this;
    }

    /// <summary>Fails the test unless the process exited with a non-zero status.</summary>
    public ToolResult EnsureFailure()
    {
        if (ExitCode == 0)
        {
            throw new ExternalToolException($"{Describe()} succeeded but was expected to fail.");
        }
        return this;
    }

    /// <summary>The command line, the exit code and the output, for assertion messages.</summary>
    public string Describe() =>
        $"`{FileName} {string.Join(' ', Arguments.Select(Quote))}` (exit {ExitCode}, {Elapsed.TotalSeconds:F1} s)" +
        $"{Environment.NewLine}--- stdout ---{Environment.NewLine}{Tail(StdOut)}" +
        $"{Environment.NewLine}--- stderr ---{Environment.NewLine}{Tail(StdErr)}";

    /// <inheritdoc />
    public override string ToString() => Describe();

    private static string Quote(string argument) =>
        argument.Length > 0 && argument.All(c => char.IsLetterOrDigit(c) || "-_./:=+,@%".Contains(c)) ? argument : $"'{argument.Replace("'", "'\\''", StringComparison.Ordinal)}'";

    private static string Tail(string text) => text.Length <= 8000 ? text : "..." + text[^8000..];
}

/// <summary>An external tool failed, could not be found, or ran out of time.</summary>
public sealed class ExternalToolException(string message) : Exception(message);

/// <summary>
/// Runs the real NBD clients installed on the machine (nbdinfo, nbdsh, qemu-img, qemu-io, nbdcopy, python3-libnbd).
/// Every process gets a PATH that starts with /usr/bin, so nbdsh (a bash script that runs <c>python3</c>) finds
/// Debian's Python with the <c>nbd</c> module rather than a pyenv shim. A missing tool fails the test: the tools
/// are installed by <c>build.sh deps</c>.
/// </summary>
public static class ExternalTool
{
    /// <summary>Default time a process may run before it is killed and the test fails.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(60);

    /// <summary>The Python that has python3-libnbd.</summary>
    public const string SystemPython = "/usr/bin/python3";

    /// <summary>The PATH given to every external process.</summary>
    public static string SearchPath { get; } = BuildSearchPath();

    /// <summary>Runs <paramref name="tool"/> with <paramref name="arguments"/> and captures its output.</summary>
    /// <param name="tool">A program name looked up on <see cref="SearchPath"/>, or an absolute path.</param>
    /// <param name="arguments">Arguments, passed without a shell.</param>
    /// <param name="stdin">Text written to the process's standard input (which is then closed); empty input when null.</param>
    /// <param name="timeout">Kill the process tree and fail after this long; <see cref="DefaultTimeout"/> when null.</param>
    /// <param name="workingDirectory">Working directory; the current one when null.</param>
    /// <param name="environment">Extra environment variables.</param>
    /// <param name="cancellationToken">Kills the process when cancelled.</param>
    public static async Task<ToolResult> RunAsync(
        string tool,
        IEnumerable<string> arguments,
        string? stdin = null,
        TimeSpan? timeout = null,
        string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null,
        CancellationToken cancellationToken = default)
    {
        string fileName = Resolve(tool);
        var startInfo = new ProcessStartInfo(fileName)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        List<string> argumentList = [.. arguments];
        foreach (string argument in argumentList)
        {
            startInfo.ArgumentList.Add(argument);
        }
        if (workingDirectory is not null)
        {
            startInfo.WorkingDirectory = workingDirectory;
        }
        startInfo.Environment["PATH"] = SearchPath;
        // Keep tool output stable and free of colour codes or localisation.
        startInfo.Environment["LC_ALL"] = "C";
        startInfo.Environment["LANG"] = "C";
        startInfo.Environment.Remove("PYTHONPATH");
        startInfo.Environment.Remove("PYTHONHOME");
        if (environment is not null)
        {
            foreach ((string key, string value) in environment)
            {
                startInfo.Environment[key] = value;
            }
        }

        TimeSpan limit = timeout ?? DefaultTimeout;
        var stopwatch = Stopwatch.StartNew();
        using var process = new Process { StartInfo = startInfo };
        if (!process.Start())
        {
            throw new ExternalToolException($"Could not start {fileName}.");
        }
        Task<string> stdout = process.StandardOutput.ReadToEndAsync(CancellationToken.None);
        Task<string> stderr = process.StandardError.ReadToEndAsync(CancellationToken.None);
        try
        {
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin.AsMemory(), cancellationToken).ConfigureAwait(false);
            }
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The process exited without reading its input; its exit code tells the story.
        }

        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        try
        {
            await process.WaitForExitAsync(deadline.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            KillTree(process);
            string partialOut = await CollectAsync(stdout).ConfigureAwait(false);
            string partialErr = await CollectAsync(stderr).ConfigureAwait(false);
            var partial = new ToolResult(fileName, argumentList, -1, partialOut, partialErr, stopwatch.Elapsed);
            cancellationToken.ThrowIfCancellationRequested();
            throw new ExternalToolException($"Timed out after {limit.TotalSeconds:F0} s and killed: {partial.Describe()}");
        }
        string output = await stdout.ConfigureAwait(false);
        string error = await stderr.ConfigureAwait(false);
        return new ToolResult(fileName, argumentList, process.ExitCode, output, error, stopwatch.Elapsed);
    }

    /// <summary>Runs a tool and fails the test unless it exits with status 0.</summary>
    public static async Task<ToolResult> RunCheckedAsync(
        string tool,
        IEnumerable<string> arguments,
        string? stdin = null,
        TimeSpan? timeout = null,
        IReadOnlyDictionary<string, string>? environment = null,
        CancellationToken cancellationToken = default)
    {
        ToolResult result = await RunAsync(tool, arguments, stdin, timeout, environment: environment, cancellationToken: cancellationToken).ConfigureAwait(false);
        return result.EnsureSuccess();
    }

    /// <summary>
    /// Writes <paramref name="script"/> to a temporary .py file and runs it with Debian's Python (the one with
    /// python3-libnbd), passing <paramref name="arguments"/> as <c>sys.argv[1:]</c>.
    /// </summary>
    public static async Task<ToolResult> RunPythonAsync(string script, IEnumerable<string> arguments, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        string directory = Directory.CreateTempSubdirectory("nbdfast-py-").FullName;
        try
        {
            string path = Path.Combine(directory, "script.py");
            await File.WriteAllTextAsync(path, script, cancellationToken).ConfigureAwait(false);
            return await RunAsync(SystemPython, [path, .. arguments], timeout: timeout, cancellationToken: cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>Finds <paramref name="tool"/> on <see cref="SearchPath"/>; a missing tool fails the test.</summary>
    public static string Resolve(string tool)
    {
        if (tool.Contains('/', StringComparison.Ordinal))
        {
            return File.Exists(tool) ? tool : throw new ExternalToolException($"{tool} does not exist; run `./build.sh deps` to install the NBD client tools.");
        }
        foreach (string directory in SearchPath.Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(directory, tool);
            if (File.Exists(candidate) && (OperatingSystem.IsWindows() || (File.GetUnixFileMode(candidate) & (UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute)) != 0))
            {
                return candidate;
            }
        }
        throw new ExternalToolException($"{tool} was not found on PATH ({SearchPath}); run `./build.sh deps` to install the NBD client tools.");
    }

    private static string BuildSearchPath()
    {
        string inherited = Environment.GetEnvironmentVariable("PATH") ?? string.Empty;
        return string.IsNullOrEmpty(inherited) ? "/usr/bin:/bin:/usr/sbin:/sbin" : "/usr/bin:" + inherited;
    }

    private static void KillTree(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited on its own in the meantime.
        }
    }

    private static async Task<string> CollectAsync(Task<string> reader)
    {
        // After a kill the pipes close; give the readers a moment, then report what there is.
        Task finished = await Task.WhenAny(reader, Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        return finished == reader ? await reader.ConfigureAwait(false) : "(output unavailable)";
    }
}

using System.Diagnostics;

namespace NbdFast.Interop.Tests.Support;

/// <summary>What a finished external process did.</summary>
public sealed record ToolResult(string Command, int ExitCode, string Stdout, string Stderr, bool TimedOut)
{
    public bool Succeeded => !TimedOut && ExitCode == 0;

    /// <summary>Everything useful for an assertion message.</summary>
    public string Describe() =>
        $"{Command}\nexit {(TimedOut ? "(timed out, killed)" : ExitCode.ToString(System.Globalization.CultureInfo.InvariantCulture))}\n" +
        $"--- stdout ---\n{Stdout}\n--- stderr ---\n{Stderr}";
}

/// <summary>Runs a process to completion with a timeout (killed on timeout), capturing its output.</summary>
public static class ExternalTool
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    public static Task<ToolResult> RunAsync(string fileName, params string[] arguments) =>
        RunAsync(fileName, arguments, DefaultTimeout);

    public static async Task<ToolResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, string? stdin = null)
    {
        string command = fileName + " " + string.Join(" ", arguments.Select(Quote));
        using var process = new Process { StartInfo = ToolEnvironment.StartInfo(fileName, arguments) };
        process.Start();
        Task<string> stdout = process.StandardOutput.ReadToEndAsync();
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        try
        {
            if (stdin is not null)
            {
                await process.StandardInput.WriteAsync(stdin).ConfigureAwait(false);
            }
            process.StandardInput.Close();
        }
        catch (IOException)
        {
            // The tool exited without reading its input; its exit status tells the story.
        }

        bool timedOut = false;
        using (var cts = new CancellationTokenSource(timeout))
        {
            try
            {
                await process.WaitForExitAsync(cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                timedOut = true;
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            }
        }
        // A grandchild holding the pipes open must not hang us: give the readers a moment, then move on.
        await Task.WhenAny(Task.WhenAll(stdout, stderr), Task.Delay(TimeSpan.FromSeconds(5))).ConfigureAwait(false);
        return new ToolResult(
            command,
            process.ExitCode,
            stdout.IsCompletedSuccessfully ? stdout.Result : "",
            stderr.IsCompletedSuccessfully ? stderr.Result : "",
            timedOut);
    }

    /// <summary>Runs a Python script with Debian's python3 (which has the nbd module); extra arguments become sys.argv[1:].</summary>
    public static Task<ToolResult> PythonAsync(string script, IEnumerable<string> arguments, TimeSpan? timeout = null) =>
        RunAsync(ToolEnvironment.Python, ["-c", script, .. arguments], timeout ?? DefaultTimeout);

    private static string Quote(string argument) =>
        argument.Length > 200 ? $"<{argument.Length} characters>"
        : argument.Length > 0 && argument.All(c => char.IsAsciiLetterOrDigit(c) || "-_./:=,+@%".Contains(c))
            ? argument
            : "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'";
}

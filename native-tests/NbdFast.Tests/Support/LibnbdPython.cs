using System.Text;
using System.Text.Json;

namespace NbdFast.Tests.Support;

/// <summary>Runs python3-libnbd scripts that print one JSON object as their last line.</summary>
public static class LibnbdPython
{
    /// <summary>
    /// Runs <paramref name="script"/> with Debian's Python, fails the test unless it exits with status 0, and
    /// returns the JSON object on the last line of its output.
    /// </summary>
    public static async Task<JsonElement> RunJsonAsync(string script, TimeSpan timeout, params string[] arguments)
    {
        ToolResult result = await ExternalTool.RunPythonAsync(script, arguments, timeout);
        result.EnsureSuccess();
        string[] lines = result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length > 0, $"The script printed nothing: {result.Describe()}");
        using JsonDocument document = JsonDocument.Parse(Encoding.UTF8.GetBytes(lines[^1]));
        return document.RootElement.Clone();
    }

    /// <summary><see cref="RunJsonAsync(string, TimeSpan, string[])"/> with a 60 s limit.</summary>
    public static Task<JsonElement> RunJsonAsync(string script, params string[] arguments) =>
        RunJsonAsync(script, TimeSpan.FromSeconds(60), arguments);
}
